// jobq dashboard: the pages of every job of a queue (ready, running,
// scheduled, done, dead; GET /api/queues/Q/jobs, docs/API.md), one job's
// page (GET /api/queues/Q/jobs/ID) with its Cancel button (POST
// .../cancel), or a dead job's Retry and Delete (POST
// /api/queues/Q/dead/ID/retry|delete), with the admin token app.js keeps. Linkable: the address
// ends in #jobs/QUEUE/STATE or #job/QUEUE/ID. Kept apart from app.js,
// which draws the overview (and lends its API call, token and messages:
// window.jobqDash); clicking a queue's row there opens its jobs here.
// Job data goes in with textContent only, never parsed as HTML.
'use strict';

(function () {
  const REFRESH_MS = 1500;
  const PAGE = 20;
  const STATES = ['ready', 'running', 'scheduled', 'done', 'dead'];
  const WHEN = { ready: 'enqueued', running: 'enqueued', scheduled: 'due', done: 'finished', dead: 'died' };
  const CANCELLABLE = ['ready', 'running', 'scheduled'];

  const view = { queue: null, state: 'ready', cursors: [null], job: null, busy: false };
  const $ = (id) => document.getElementById(id);

  const { api: call, el, say, token, fmtTime, act, armed } = window.jobqDash;
  const api = (path, method) => call(path, method === 'POST' ? { method: 'POST' } : undefined);

  // app.js shows the read-only banner when the consumer has no token.
  function readOnly() { return !$('readonly').hidden; }

  const enc = encodeURIComponent;

  // ---- where we are: the address's #fragment ----

  function go(hash) {
    if (location.hash !== hash) location.hash = hash; else route();
  }

  function route() {
    const m = /^#(jobs|job)\/([^/]+)\/([^/]+)$/.exec(location.hash);
    if (!m) return;
    const queue = decodeURIComponent(m[2]), arg = decodeURIComponent(m[3]);
    if (m[1] === 'jobs' && STATES.includes(arg)) {
      if (queue !== view.queue || arg !== view.state) view.cursors = [null];
      view.queue = queue;
      view.state = arg;
      view.job = null;
    } else if (m[1] === 'job') {
      if (queue !== view.queue) { view.state = 'ready'; view.cursors = [null]; }
      view.queue = queue;
      view.job = arg;
    }
    draw();
  }

  // ---- a page of jobs ----

  // An action's button says why it cannot act yet.
  function guarded(b) {
    if (readOnly()) {
      b.disabled = true;
      b.title = 'Read-only: start the consumer with --admin-token (env JOBQ_ADMIN_TOKEN) to allow actions';
    } else if (!token()) {
      b.title = 'Enter the admin token above first';
    }
    return b;
  }

  function cancelButton(id) {
    const b = guarded(el('button', { type: 'button', class: 'danger cancel', text: 'Cancel' }));
    b.addEventListener('click', (ev) => { ev.stopPropagation(); cancel(id); });
    return b;
  }

  // A dead job's Retry, and Delete (a second click confirms); after
  // either, back to the queue's dead jobs.
  function deadButtons(id) {
    const path = 'queues/' + enc(view.queue) + '/dead/' + enc(id) + '/';
    const back = (ok) => { if (ok) go('#jobs/' + enc(view.queue) + '/dead'); };
    const retry = guarded(el('button', { type: 'button', id: 'job-retry', text: 'Retry' }));
    retry.addEventListener('click', async () => back(await act(path + 'retry', 'retry ' + id)));
    const del = guarded(el('button', { type: 'button', id: 'job-delete', class: 'danger', text: 'Delete' }));
    armed(del, async () => back(await act(path + 'delete', 'delete ' + id)));
    return [retry, del];
  }

  async function cancel(id) {
    try {
      const r = await api('queues/' + enc(view.queue) + '/jobs/' + enc(id) + '/cancel', 'POST');
      const words = {
        cancelled: 'cancelled',
        requested: 'cancel requested: a worker stops it',
        pending: 'cancel already requested',
        ended: 'had already ended: ' + r.state,
      };
      say('job ' + id + ': ' + (words[r.outcome] || r.outcome), false);
    } catch (e) {
      say('cancel ' + id + ' failed: ' + e.message, true);
    }
    draw();
  }

  function detail(j) {
    const prio = j.priority && j.priority !== 'normal' ? 'priority ' + j.priority : '';
    if (view.state === 'running') return [prio, j.consumer + ', idle ' + j.idle_ms + ' ms, delivery ' + j.deliveries].filter(Boolean).join(', ');
    if (view.state === 'ready') return [prio, j.entry_id === j.id ? '' : 'entry ' + j.entry_id].filter(Boolean).join(', ');
    return j.error || '';
  }

  async function drawPage() {
    const name = view.queue, st = view.state, cursor = view.cursors[view.cursors.length - 1];
    const page = await api('queues/' + enc(name) + '/jobs?state=' + st + '&count=' + PAGE +
      (cursor ? '&cursor=' + enc(cursor) : ''));
    if (name !== view.queue || st !== view.state) return;
    // Rows are rebuilt only when the page changed, so that a click never
    // lands on a row that was just replaced.
    const sig = JSON.stringify(page) + readOnly() + !!token() + view.job;
    if ($('jobs').dataset.sig === sig) return;
    $('jobs').dataset.sig = sig;
    const rows = page.jobs.map((j) => {
      const tr = el('tr', { class: 'clickable' + (j.id === view.job ? ' selected' : '') },
        el('td', { class: 'id', text: j.id }),
        el('td', { text: (st === 'done' ? j.state : j.type) || '–' }),
        el('td', { text: fmtTime(j.at) }),
        el('td', { class: 'n', text: j.attempts === null ? '–' : String(j.attempts) }),
        el('td', { class: st === 'running' || st === 'ready' ? '' : 'err', text: detail(j) }),
        el('td', {}, CANCELLABLE.includes(st) ? cancelButton(j.id) : ''));
      tr.dataset.key = j.id;
      tr.addEventListener('click', () => go('#job/' + enc(name) + '/' + enc(j.id)));
      return tr;
    });
    $('jobs').tBodies[0].replaceChildren(...rows);
    $('jobs-when').textContent = WHEN[st];
    $('jobs-kind').textContent = st === 'done' ? 'state' : 'type';
    const first = view.cursors.length === 1;
    $('no-jobs').hidden = page.jobs.length > 0;
    $('no-jobs').textContent = first
      ? (st === 'done' ? 'No done jobs indexed: `jobq jobs keep-done -q ' + name + ' N` keeps the last N.' : 'No ' + st + ' jobs.')
      : 'No more.';
    const pos = view.cursors.length - 1;
    $('jobs-range').textContent = 'page ' + (pos + 1) + (page.total !== null ? ' of ' + Math.max(1, Math.ceil(page.total / PAGE)) + ' (' + page.total + ' jobs)' : '');
    $('jobs-prev').disabled = first;
    $('jobs-next').disabled = page.next === null;
    $('jobs-next').onclick = () => { view.cursors.push(page.next); draw(); };
  }

  // ---- one job ----

  function preview(p) {
    if (!p || p.kind === 'none') return '(none)';
    let text = p.text;
    if (p.kind === 'json' && !p.truncated) {
      try { text = JSON.stringify(JSON.parse(p.text), null, 2); } catch (e) { text = p.text; }
    }
    return text + (p.truncated ? '\n…' : '');
  }

  async function drawJob() {
    const name = view.queue, id = view.job;
    let job;
    try {
      job = await api('queues/' + enc(name) + '/jobs/' + enc(id));
    } catch (e) {
      $('job-page').hidden = true;
      say('cannot show job ' + id + ': ' + e.message, true);
      return;
    }
    if (name !== view.queue || id !== view.job) return;
    if ($('job-page').hidden || $('job-page').dataset.id !== id) {
      $('job-page').hidden = false;
      $('job-page').dataset.id = id;
      $('job-page').scrollIntoView({ block: 'nearest' });
    }
    $('job-page').querySelector('.jid').textContent = job.id;
    const badge = $('job-page').querySelector('.badge');
    badge.textContent = job.state;
    badge.className = 'badge state-' + job.state;
    const rows = [];
    for (const [k, v] of Object.entries(job)) {
      if (k === 'payload' || k === 'result' || k === 'id' || (k === 'at' && !v)) continue;
      const shown = /(_at|^at)$/.test(k) && typeof v === 'number' ? fmtTime(v) + ' (' + v + ')' : String(v);
      rows.push(el('tr', {}, el('td', { text: k }), el('td', { text: shown })));
    }
    $('job-page-fields').tBodies[0].replaceChildren(...rows);
    $('job-page-payload').textContent = preview(job.payload);
    $('job-page-result-h').hidden = $('job-page-result').hidden = !job.result;
    if (job.result) $('job-page-result').textContent = preview(job.result);
    const actions = $('job-page-actions');
    // The buttons act on one job: rebuilt for another, even in the same state.
    const sig = job.id + ' ' + job.state + (readOnly() ? 'ro' : 'rw') + (token() ? 't' : '');
    if (actions.dataset.sig !== sig) {
      actions.dataset.sig = sig;
      const acts = CANCELLABLE.includes(job.state) ? [cancelButton(job.id)]
        : job.state === 'dead' ? deadButtons(job.id) : [];
      actions.replaceChildren(...acts,
        el('button', { type: 'button', id: 'job-page-close', text: 'Close' }));
      $('job-page-close').addEventListener('click', () => go('#jobs/' + enc(view.queue) + '/' + view.state));
    }
  }

  async function draw() {
    if (!view.queue || view.busy) return;
    view.busy = true;
    try {
      $('jobs-section').hidden = false;
      for (const s of document.querySelectorAll('.jobs-qname')) s.textContent = view.queue;
      for (const b of $('jobs-tabs').querySelectorAll('button'))
        b.setAttribute('aria-pressed', String(b.dataset.state === view.state));
      await drawPage();
      if (view.job) await drawJob(); else $('job-page').hidden = true;
    } catch (e) {
      say('jobs of ' + view.queue + ': ' + e.message, true);
    } finally {
      view.busy = false;
    }
  }

  function init() {
    const tabs = $('jobs-tabs');
    for (const st of STATES) {
      const b = el('button', { type: 'button', text: st });
      b.dataset.state = st;
      b.addEventListener('click', () => go('#jobs/' + enc(view.queue) + '/' + st));
      tabs.append(b);
    }
    $('jobs-prev').addEventListener('click', () => { view.cursors.pop(); draw(); });
    // app.js redraws the queues table; a click on a row selects the queue.
    $('queues').tBodies[0].addEventListener('click', (ev) => {
      const tr = ev.target.closest('tr');
      if (tr && !ev.target.closest('button') && tr.dataset.key !== view.queue)
        go('#jobs/' + enc(tr.dataset.key) + '/ready');
    });
    window.addEventListener('hashchange', route);
    route();
    setInterval(draw, REFRESH_MS);
  }

  init();
})();
