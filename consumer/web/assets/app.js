// jobq dashboard: polls the JSON API (docs/API.md) and draws the page with
// DOM calls only. Everything that comes from jobs (ids, types, errors,
// payloads) is put in with textContent, never parsed as HTML.
'use strict';

(function () {
  const REFRESH_MS = 1500;
  const HISTORY_MS = 10000;
  const TOKEN_KEY = 'jobq-admin-token';

  const state = {
    overview: null,
    history: null,
    historyAt: 0,
    queue: null,      // the selected queue (its jobs: jobs.js)
    readOnly: true,
    busy: false,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'title') e.title = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  }

  function svgEl(tag, attrs) {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  // Brings tbody's rows in line with items, keyed by key(item), updating
  // cells in place: rows and buttons that did not change stay the same
  // elements, so a click never lands on a row that was just replaced.
  // cells(item) gives one spec per cell: {text, cls, title} or
  // {node: () => Node, sig, cls} (node is rebuilt only when sig changes).
  function syncRows(tbody, items, key, cells, rowClass, onClick) {
    const old = new Map();
    for (const tr of Array.from(tbody.rows)) old.set(tr.dataset.key, tr);
    let prev = null;
    for (const item of items) {
      const k = String(key(item));
      let tr = old.get(k);
      if (tr) {
        old.delete(k);
      } else {
        tr = document.createElement('tr');
        tr.dataset.key = k;
        if (onClick) tr.addEventListener('click', () => onClick(k));
      }
      tr.className = rowClass ? rowClass(item) : '';
      const specs = cells(item);
      specs.forEach((c, i) => {
        const td = tr.cells[i] || tr.insertCell(i);
        const cls = c.cls || '';
        if (td.className !== cls) td.className = cls;
        if (c.title !== undefined && td.title !== c.title) td.title = c.title;
        if (c.node) {
          if (td.dataset.sig !== c.sig) {
            td.replaceChildren(c.node());
            td.dataset.sig = c.sig;
          }
        } else if (td.textContent !== c.text) {
          td.textContent = c.text;
        }
      });
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of old.values()) tr.remove();
  }

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }

  // ---- formatting ----

  function fmtInt(n) {
    return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US');
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '–';
    if (ms < 1) return '<1 ms';
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + ' s';
    return (ms / 60000).toFixed(1) + ' min';
  }

  function fmtRate(r) {
    if (r === null || r === undefined) return '–';
    return r >= 100 ? Math.round(r).toLocaleString('en-US') : r.toFixed(r >= 10 ? 1 : 2);
  }

  function fmtBytes(b) {
    if (b === null || b === undefined) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i ? b.toFixed(1) : b) + ' ' + u[i];
  }

  function fmtAgo(ms, now) {
    if (!ms) return '–';
    const d = now - ms;
    if (d < 0) return 'in ' + fmtMs(-d);
    return fmtMs(d) + ' ago';
  }

  function fmtTime(ms) {
    if (!ms) return 'at once';
    return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
  }

  // ---- talking to the API ----

  async function api(path, opts) {
    const o = Object.assign({ headers: {} }, opts || {});
    if (o.method === 'POST') {
      const t = token();
      if (t) o.headers.Authorization = 'Bearer ' + t;
    }
    let res;
    try {
      res = await fetch('/api/' + path, o);
    } catch (e) {
      throw new Error('the consumer does not answer');
    }
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) {
      const msg = body && body.error ? body.error : 'HTTP ' + res.status;
      const err = new Error(msg);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  function q(name) { return encodeURIComponent(name); }

  function say(text, isError) {
    const m = $('message');
    m.textContent = text;
    m.classList.toggle('error', !!isError);
    m.hidden = !text;
  }

  async function act(path, what) {
    try {
      const r = await api(path, { method: 'POST' });
      let text = what + ': done';
      if (r && typeof r.count === 'number') text = what + ': ' + r.count + ' job' + (r.count === 1 ? '' : 's');
      say(text, false);
      await refresh();
      return true;
    } catch (e) {
      say(what + ' failed: ' + e.message, true);
      return false;
    }
  }

  // ---- actions' buttons ----

  function actionButton(label, path, what, cls) {
    const b = el('button', { type: 'button', text: label, class: cls || '' });
    if (state.readOnly) {
      b.disabled = true;
      b.title = 'Read-only: start the consumer with --admin-token (env JOBQ_ADMIN_TOKEN) to allow actions';
    } else if (!token()) {
      b.title = 'Enter the admin token above first';
    }
    b.addEventListener('click', (ev) => {
      ev.stopPropagation();
      act(path, what);
    });
    return b;
  }

  // A delete asks for a second click within 3 s instead of a dialog.
  function armed(button, run) {
    button.addEventListener('click', () => {
      if (button.classList.contains('armed')) {
        button.classList.remove('armed');
        button.textContent = button.dataset.label;
        run();
        return;
      }
      button.dataset.label = button.textContent;
      button.classList.add('armed');
      button.textContent = 'Click again to delete';
      setTimeout(() => {
        button.classList.remove('armed');
        button.textContent = button.dataset.label;
      }, 3000);
    });
  }

  function setReadOnly(ro) {
    state.readOnly = ro;
    $('readonly').hidden = !ro;
    $('token-form').hidden = ro;
    $('token-form').classList.toggle('set', !!token());
  }

  // ---- queues ----

  function sparkline(name) {
    const w = 120, h = 26;
    const s = svgEl('svg', { class: 'spark', width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, role: 'img' });
    const hist = state.history && state.history.queues ? state.history.queues[name] : null;
    s.append(svgEl('line', { x1: 0, y1: h - 0.5, x2: w, y2: h - 0.5 }));
    if (!hist) return s;
    const p = hist.processed, f = hist.failed, n = p.length;
    const max = Math.max(1, ...p.map((v, i) => v + f[i]));
    const bw = w / n;
    for (let i = 0; i < n; i++) {
      const ph = (p[i] / max) * (h - 2), fh = (f[i] / max) * (h - 2);
      if (ph > 0) s.append(svgEl('rect', { class: 'p', x: i * bw + 0.5, y: h - 1 - ph, width: Math.max(1, bw - 1), height: ph }));
      if (fh > 0) s.append(svgEl('rect', { class: 'f', x: i * bw + 0.5, y: h - 1 - ph - fh, width: Math.max(1, bw - 1), height: fh }));
    }
    const total = p.reduce((a, b) => a + b, 0);
    const t = svgEl('title');
    t.textContent = total.toLocaleString('en-US') + ' processed in the last ' + n + ' min (peak ' + max + '/min)';
    s.append(t);
    return s;
  }

  function pct(lat) {
    return lat && lat.p50_ms !== undefined ? lat : { p50_ms: null, p99_ms: null };
  }

  function drawQueues(ov) {
    const queues = ov.stats.queues;
    const auth = (state.readOnly ? 'ro' : 'rw') + (token() ? 't' : '');
    syncRows($('queues').tBodies[0], queues, (qu) => qu.queue, (qu) => {
      const name = qu.queue;
      const wait = pct(qu.wait), run = pct(qu.run);
      return [
        { text: name, cls: 'name' },
        { text: fmtInt(qu.ready), cls: 'n ready' },
        { text: fmtInt(qu.running), cls: 'n running' },
        { text: fmtInt(qu.scheduled), cls: 'n scheduled' },
        { text: fmtInt(qu.dead), cls: 'n dead' + (qu.dead ? ' dead-count' : '') },
        { cls: 'paused', sig: String(qu.paused), node: () => qu.paused
          ? el('span', { class: 'badge paused', text: 'paused' })
          : el('span', { class: 'badge live', text: 'no' }) },
        { text: fmtInt(qu.processed), cls: 'n processed' },
        { text: fmtInt(qu.failed), cls: 'n failed' },
        { text: fmtRate(qu.jobs_per_s), cls: 'n' },
        { text: fmtMs(wait.p50_ms), cls: 'n' },
        { text: fmtMs(wait.p99_ms), cls: 'n' },
        { text: fmtMs(run.p50_ms), cls: 'n' },
        { text: fmtMs(run.p99_ms), cls: 'n' },
        { sig: String(state.historyAt), node: () => sparkline(name) },
        { sig: qu.paused + auth, node: () => el('div', { class: 'actions' },
          qu.paused
            ? actionButton('Resume', 'queues/' + q(name) + '/resume', 'resume ' + name)
            : actionButton('Pause', 'queues/' + q(name) + '/pause', 'pause ' + name),
          actionButton('Retry dead', 'queues/' + q(name) + '/dead/retry-all', 'retry all dead of ' + name)) },
      ];
    }, (qu) => 'clickable' + (qu.queue === state.queue ? ' selected' : ''), selectQueue);
    $('no-queues').hidden = queues.length > 0;
  }

  // ---- workers ----

  function drawWorkers(ov) {
    const workers = ov.stats.workers || [];
    // A worker that missed two heartbeats is stale: its hash expires after
    // three, and it drops out of the list.
    const staleMs = 2 * (ov.heartbeat_ms || 1000);
    const isStale = (w) => ov.now_ms - w.last_seen > staleMs;
    syncRows($('workers').tBodies[0], workers, (w) => w.id, (w) => {
      const stale = isStale(w);
      const label = stale ? 'stale' : w.draining ? 'draining' : 'live';
      return [
        { text: w.id },
        { text: w.host || '–' },
        { text: w.pid === undefined ? '–' : String(w.pid), cls: 'n' },
        { text: (w.queues || []).join(', ') },
        { text: fmtInt(w.busy_io), cls: 'n' },
        { text: fmtInt(w.busy_cpu) + ' / ' + fmtInt(w.threads), cls: 'n' },
        { text: fmtInt(w.cpu_backlog), cls: 'n' },
        { text: fmtBytes(w.rss_bytes), cls: 'n' },
        { text: w.loop_lag_us === undefined ? '–' : fmtMs(w.loop_lag_us / 1000), cls: 'n' },
        { text: fmtInt(w.processed), cls: 'n' },
        { sig: label + fmtAgo(w.last_seen, ov.now_ms), cls: 'seen', node: () => el('span', {},
          el('span', { class: 'badge ' + (stale ? 'stale' : 'live'), text: label }),
          ' ' + fmtAgo(w.last_seen, ov.now_ms)) },
      ];
    }, (w) => (isStale(w) ? 'stale' : ''));
    $('no-workers').hidden = workers.length > 0;
  }

  // ---- schedules (PROTOCOL §13): the first few of each queue ----

  function drawSchedules(ov) {
    const rows = [];
    let more = 0;
    for (const qu of ov.stats.queues) {
      for (const sc of qu.next_schedules || []) rows.push({ queue: qu.queue, ...sc });
      more += Math.max(0, (qu.schedules || 0) - (qu.next_schedules || []).length);
    }
    syncRows($('schedules').tBodies[0], rows, (sc) => sc.queue + '/' + sc.name, (sc) => [
      { text: sc.name, cls: 'name' },
      { text: sc.queue },
      { text: sc.next_ms ? fmtTime(sc.next_ms) : 'not computed yet', cls: 'next' },
      // A tick fires within about 250 ms while a consumer serves the queue.
      { text: sc.lag_ms ? fmtMs(sc.lag_ms) : '–', cls: 'n lag' + (sc.lag_ms > 2000 ? ' dead-count' : '') },
    ]);
    $('schedules-section').hidden = rows.length === 0;
    $('more-schedules').hidden = more === 0;
    $('more-schedules').textContent = more + ' more: jobq schedule list';
  }

  // ---- limits (PROTOCOL §9): the queues that have one ----

  function drawLimits(ov) {
    const rows = ov.stats.queues.filter((qu) => qu.limit);
    syncRows($('limits').tBodies[0], rows, (qu) => qu.queue, (qu) => {
      const l = qu.limit;
      const rate = l.rate ? l.rate + ' / ' + fmtMs(l.period_ms) : '–';
      return [
        { text: qu.queue, cls: 'name' },
        { text: rate },
        { text: l.concurrency ? fmtInt(l.concurrency) : '–', cls: 'n' },
        { text: fmtInt(l.leases), cls: 'n leases' },
        { text: fmtInt(qu.held_back), cls: 'n held' + (qu.held_back ? ' dead-count' : '') },
        { text: (l.blocked_by || []).join(', ') || '–', cls: 'blocked' },
        { text: l.backoff_ms ? fmtMs(l.backoff_ms) : '–', cls: 'n' },
      ];
    });
    $('limits-section').hidden = rows.length === 0;
  }

  // ---- running jobs (PROTOCOL §7, §14): up to 20 of each queue ----

  function drawRunning(ov) {
    const rows = [];
    for (const qu of ov.stats.queues)
      for (const j of qu.running_jobs || []) rows.push({ queue: qu.queue, ...j });
    syncRows($('running').tBodies[0], rows, (j) => j.queue + '/' + j.entry_id, (j) => {
      const p = j.progress === null || j.progress === undefined ? null : j.progress;
      return [
        { text: j.id, cls: 'name' },
        { text: j.queue },
        { text: j.type, cls: 'type' },
        { text: j.worker },
        { text: j.elapsed_ms === null || j.elapsed_ms === undefined ? '–' : fmtMs(j.elapsed_ms), cls: 'n elapsed' },
        { sig: String(p), node: () => p === null ? el('span', { text: '–' })
          : el('progress', { max: '1', value: String(p), title: Math.round(p * 100) + '%' }) },
        { text: p === null ? '' : Math.round(p * 100) + '%', cls: 'n pct' },
        { text: j.progress_msg || '', cls: 'msg' },
      ];
    });
    $('running-section').hidden = rows.length === 0;
  }

  // ---- one queue ----

  // Marks the queue's row; jobs.js opens its jobs on the same click.
  function selectQueue(name) {
    state.queue = name;
    for (const tr of $('queues').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.key === name);
  }

  // ---- the loop ----

  async function refresh() {
    if (state.busy) return;
    state.busy = true;
    try {
      const now = Date.now();
      if (!state.history || now - state.historyAt > HISTORY_MS) {
        state.history = await api('history?minutes=30');
        state.historyAt = now;
      }
      const ov = await api('overview');
      state.overview = ov;
      setReadOnly(ov.read_only);
      drawQueues(ov);
      drawWorkers(ov);
      drawSchedules(ov);
      drawLimits(ov);
      drawRunning(ov);
      const st = $('status');
      st.textContent = 'updated ' + new Date().toLocaleTimeString();
      st.classList.remove('down');
    } catch (e) {
      const st = $('status');
      st.textContent = 'not updated: ' + e.message;
      st.classList.add('down');
    } finally {
      state.busy = false;
    }
  }

  function init() {
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { /* private mode */ }
      $('token').value = '';
      say(t ? 'admin token set for this tab' : '', false);
      refresh();
    });
    $('token-forget').addEventListener('click', () => {
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
      say('admin token forgotten', false);
      refresh();
    });
    refresh();
    setInterval(refresh, REFRESH_MS);
  }

  init();
  // For jobs.js, the pages of every job: one way to call the API, to hold
  // the token, to act and to speak.
  window.jobqDash = { api, el, say, token, fmtTime, act, armed };
})();
