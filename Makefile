# jobq: plain GNU make. `make` builds bin/, `make test` installs what the
# suite needs and runs it, `make check` runs it again under ASan + UBSan.

PKGS := libuv hiredis msgpack json-c
# libcrypto is not linked: the consumer dlopens it at its first use
# (consumer/dl/cryptosym.h), so an idle worker does not map it. Its headers only.
CRYPTO_CFLAGS := $(shell pkg-config --cflags libcrypto 2>/dev/null)
CC ?= cc
SAN ?= 0

ifeq ($(SAN),1)
BUILD := build/san
BIN := build/san/bin
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1 -g
else
BUILD := build/rel
BIN := bin
SANFLAGS :=
OPT := -O2 -g
endif

WARN := -Wall -Wextra -Wformat=2 -Wstrict-prototypes -Wno-unused-parameter
CFLAGS := -std=gnu11 $(OPT) $(WARN) $(SANFLAGS) -MMD -MP -Iinclude -iquote common \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CRYPTO_CFLAGS)
# jobq top draws with ncurses (wide, for the sparkline's UTF-8 blocks).
CLI_LIBS := $(shell pkg-config --libs ncursesw 2>/dev/null)
# libhttp-parser ships no pkg-config file.
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lpthread
# The consumer's notifications to systemd (consumer/master/notify.c) speak the
# protocol themselves: libsystemd is not linked.
CONSUMER_LDLIBS :=
LDFLAGS := $(SANFLAGS)

COMMON_SRC := common/log.c common/keys.c common/job.c common/codec.c common/codec_from_json.c \
	common/codec_to_json.c common/url.c common/config.c common/cpus.c common/args.c common/view.c \
	common/proc.c common/unique.c common/cancel_lua.c common/batch.c common/bigbuf.c
PRODUCER_LIB_SRC := producer/conn.c producer/jobq.c producer/wait.c producer/locate.c producer/browse.c producer/dead.c producer/batch.c \
	producer/cancel.c producer/admin.c producer/watch.c producer/watch_running.c
# Sentinel (redis+sentinel://): where the master is.
COMMON_SRC += common/sentinel.c
# TLS to Redis (rediss://): libssl opened with dlopen (common/dynlib.c).
COMMON_SRC += common/dynlib.c common/tls.c
PRODUCER_CLI_SRC := producer/cli.c producer/cli_util.c producer/cli_admin.c producer/cli_stats.c \
	producer/cli_fmt.c producer/cli_top.c producer/cli_progress.c producer/cli_limit.c producer/cli_jobs.c producer/cli_batch.c
# Schedules (issue 25): cron and time zones, libjobq's and the CLI's part.
COMMON_SRC += common/tz.c common/cron.c
PRODUCER_LIB_SRC += producer/schedule.c
# Redis Cluster (issue 24): slots and the slot map, shared; libjobq's routing.
COMMON_SRC += common/slot.c common/slotmap.c
PRODUCER_LIB_SRC += producer/cluster.c
PRODUCER_CLI_SRC += producer/cli_schedule.c

# The consumer, one folder per role (docs/ARCHITECTURE.md). Each folder sees
# only the folders below it, through its include path: a header it may not
# use is not found, so a circle between folders cannot compile.
#   conf      the option table                        sees common
#   redis     the connection and its reply arena      sees common
#   dl        libraries opened on first use (dlopen)  sees nothing
#   handlers  the registry and every kind of handler  sees conf dl
#   worker    a job's life: fetch, run, finish        sees conf redis handlers
#   web       HTTP server, metrics, dashboard         sees conf dl include/jobq
#   master    supervision of the workers              sees conf redis web
#   main.c    the entry                               sees every folder
# Every folder also sees common/ and the public include/.
CONSUMER_DIRS := conf redis dl handlers worker web master
SRC_conf := options
SRC_redis := rconn resolve reply bulkcap switchsub rcluster
SRC_dl := cryptosym curlsym
SRC_handlers := registry builtins plugin exec exec_cmd exec_run exec_guard http http_allow curluv procwire procproc procpool handlers
SRC_worker := admit attempt cancel chunks counts fetch finish finish_hold heartbeat limit outcome pool pool_policy progress qhealth reclaim run sched settings trim types worker
SRC_redis += script
SRC_worker += ticks
SRC_worker += levels
SRC_web := dash dash_api dash_jobs dashsrv httpd httpd_admit httpd_req metrics
SRC_master := handback master notify reap supervise workers
CONSUMER_SRC := $(foreach d,$(CONSUMER_DIRS),$(SRC_$(d):%=consumer/$(d)/%.c))
# (handlers/exec_guard_main.c is the exec guard's own binary, below.)
CFLAGS += $(shell pkg-config --cflags libcurl 2>/dev/null)
all: $(BIN)/jobq-exec-guard
# libcurl is dlopen'ed (consumer/dl/curlsym.c), only when --http-allow turns
# http on; libcrypto (cryptosym.c) at the first sha256 job or --admin-token.
CONSUMER_LDLIBS += -ldl
# The web dashboard (issue 11); its page is compiled in by scripts/embed.sh.
WEB_ASSETS := consumer/web/assets/index.html consumer/web/assets/app.js \
	consumer/web/assets/jobs.js consumer/web/assets/app.css consumer/web/assets/favicon.svg
CONSUMER_MAIN := consumer/main.c

# Include paths, per folder (see the table above).
SEES_conf :=
SEES_redis :=
SEES_dl :=
SEES_handlers := conf dl
SEES_worker := conf redis handlers dl
SEES_web := conf dl
SEES_master := conf redis web
iquote = $(foreach d,$(1),-iquote consumer/$(d))
$(foreach d,$(CONSUMER_DIRS),$(eval $(BUILD)/consumer/$(d)/%.o: DIR_CFLAGS := $(call iquote,$(SEES_$(d)))))
$(BUILD)/consumer/main.o: DIR_CFLAGS := $(call iquote,$(CONSUMER_DIRS))
$(BUILD)/gen/%.o: DIR_CFLAGS := -iquote consumer/web
$(BUILD)/producer/%.o: DIR_CFLAGS := -iquote producer
# Tests and benchmarks reach every module.
TEST_CFLAGS := -iquote producer $(call iquote,$(CONSUMER_DIRS)) -iquote tests/unit
$(BUILD)/tests/%.o: DIR_CFLAGS := $(TEST_CFLAGS)

UNIT_SRC := $(wildcard tests/unit/test_*.c)

COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
PRODUCER_LIB_OBJ := $(PRODUCER_LIB_SRC:%.c=$(BUILD)/%.o)
CONSUMER_OBJ := $(CONSUMER_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/dash_assets.o
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

LIBJOBQ := $(BUILD)/libjobq.a

# libjobq as a shared library: position-independent objects of their own,
# the soname of the ABI (bump it when a public function changes or goes),
# and a version script that exports the functions of jobq.h and nothing else.
JQ_VERSION := 1.0.0
JQ_SONAME := libjobq.so.1
LIBJOBQ_SO := $(BUILD)/libjobq.so.$(JQ_VERSION)
LIB_PIC_OBJ := $(COMMON_SRC:%.c=$(BUILD)/pic/%.o) $(PRODUCER_LIB_SRC:%.c=$(BUILD)/pic/%.o)
LIB_LDLIBS := $(shell pkg-config --libs hiredis msgpack json-c 2>/dev/null)

# ---- style: one .clang-format for the tree (K&R, 4 spaces, 100 columns).
# `make format` rewrites every tracked C file; `make format-check` (CI)
# lists the files that differ and fails.
FORMAT_FILES = $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null)
.PHONY: format format-check
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@bad=0; for f in $(FORMAT_FILES); do \
		clang-format $$f | cmp -s $$f - || { echo "format-check: $$f differs (make format)"; bad=1; }; \
	done; exit $$bad

.PHONY: all run test check unit integration bench bench-compare install uninstall man clean deps test-deps test-compose test-systemd

all: $(BIN)/jobq-consumer $(BIN)/jobq $(LIBJOBQ) $(LIBJOBQ_SO)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DIR_CFLAGS) -c $< -o $@

$(BUILD)/gen/dash_assets.c: $(WEB_ASSETS) scripts/embed.sh
	@mkdir -p $(dir $@)
	sh scripts/embed.sh $@ $(WEB_ASSETS)

$(BUILD)/gen/dash_assets.o: $(BUILD)/gen/dash_assets.c
	$(CC) $(CFLAGS) $(DIR_CFLAGS) -c $< -o $@

$(LIBJOBQ): $(COMMON_OBJ) $(PRODUCER_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -iquote producer -fPIC -c $< -o $@

$(LIBJOBQ_SO): $(LIB_PIC_OBJ) packaging/libjobq.map
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,$(JQ_SONAME) -Wl,--version-script=packaging/libjobq.map \
		-Wl,--no-undefined $(LIB_PIC_OBJ) -o $@ $(LIB_LDLIBS)
	ln -sf $(notdir $@) $(BUILD)/$(JQ_SONAME)
	ln -sf $(JQ_SONAME) $(BUILD)/libjobq.so

$(BIN)/jobq-consumer: $(BUILD)/$(CONSUMER_MAIN:.c=.o) $(CONSUMER_OBJ) $(PRODUCER_LIB_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(CONSUMER_LDLIBS)

$(BIN)/jobq: $(PRODUCER_CLI_SRC:%.c=$(BUILD)/%.o) $(LIBJOBQ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(CLI_LIBS)

# Unit tests link every module but the mains, so a test can reach any of them.
$(BUILD)/tests/%: tests/unit/%.c $(COMMON_OBJ) $(PRODUCER_LIB_OBJ) $(CONSUMER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS) $(CONSUMER_LDLIBS) $(shell pkg-config --libs criterion)

# The stage tests link fetch.c and reclaim.c with a fake connection
# (tests/unit/fake_rconn.c) in place of rconn.c, the real admission, queue
# health and run life cycle (run.c), and recording stand-ins for the
# worker's other stages (tests/unit/fake_stages.c) instead of worker.c and
# chunks.c. The stages' calls of jq_run_free reach the real one through
# the fakes' __wrap_jq_run_free (ld --wrap), which records the run as
# freed first. test_fetch and test_reclaim have finish.c's stand-ins
# (fake_finish.c); test_finish has the real finish.c and trim.c.
STAGE_OBJ := $(BUILD)/tests/unit/fake_rconn.o $(BUILD)/tests/unit/fake_stages.o \
	$(BUILD)/consumer/worker/fetch.o $(BUILD)/consumer/worker/levels.o $(BUILD)/consumer/worker/reclaim.o \
	$(BUILD)/consumer/worker/admit.o \
	$(BUILD)/consumer/worker/types.o \
	$(BUILD)/consumer/worker/qhealth.o $(BUILD)/consumer/worker/run.o $(BUILD)/consumer/redis/reply.o \
	$(COMMON_OBJ)
STAGE_LINK = $(CC) $(CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) -Wl,--wrap=jq_run_free $(filter %.c %.o,$^) \
	-o $@ $(LDLIBS) $(shell pkg-config --libs criterion)
STAGE_TESTS := $(BUILD)/tests/test_fetch $(BUILD)/tests/test_reclaim $(BUILD)/tests/test_levels
$(STAGE_TESTS): $(BUILD)/tests/%: tests/unit/%.c $(STAGE_OBJ) $(BUILD)/tests/unit/fake_finish.o
	@mkdir -p $(dir $@)
	$(STAGE_LINK)
$(BUILD)/tests/test_sched: tests/unit/test_sched.c $(STAGE_OBJ) $(BUILD)/tests/unit/fake_finish.o \
		$(BUILD)/consumer/worker/sched.o $(BUILD)/consumer/redis/script.o
	@mkdir -p $(dir $@)
	$(STAGE_LINK)
$(BUILD)/tests/test_heartbeat: tests/unit/test_heartbeat.c $(STAGE_OBJ) $(BUILD)/tests/unit/fake_finish.o \
		$(BUILD)/consumer/worker/heartbeat.o
	@mkdir -p $(dir $@)
	$(STAGE_LINK)
$(BUILD)/tests/test_finish: tests/unit/test_finish.c $(STAGE_OBJ) $(BUILD)/consumer/worker/finish.o \
		$(BUILD)/consumer/worker/outcome.o $(BUILD)/consumer/worker/counts.o $(BUILD)/consumer/worker/finish_hold.o \
		$(BUILD)/consumer/worker/trim.o
	@mkdir -p $(dir $@)
	$(STAGE_LINK)

# test_rconn: the connection on its own, against a fake Redis of the test's,
# with libuv's uv_poll_start wrapped (ld --wrap) so that it can fail.
$(BUILD)/tests/test_rconn: tests/unit/test_rconn.c $(BUILD)/consumer/redis/rconn.o $(BUILD)/consumer/redis/resolve.o \
		$(BUILD)/consumer/redis/reply.o $(BUILD)/consumer/redis/bulkcap.o $(BUILD)/consumer/redis/switchsub.o \
		$(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) -Wl,--wrap=uv_poll_start $(filter %.c %.o,$^) \
		-o $@ $(LDLIBS) $(shell pkg-config --libs criterion)

# The exec guard on its own, with libc only: it starts once per exec job.
$(BIN)/jobq-exec-guard: $(BUILD)/consumer/handlers/exec_guard_main.o $(BUILD)/consumer/handlers/exec_guard.o \
		$(BUILD)/common/proc.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@

# Plugins (include/jobq/handler.h): the example, and the broken ones the
# tests load. Built without sanitizers: a plugin is the user's code.
PLUGIN_CFLAGS := -std=gnu11 -O2 -g -fPIC -shared $(WARN) -Iinclude \
	$(shell pkg-config --cflags msgpack libuv 2>/dev/null)
PLUGIN_LIBS := $(shell pkg-config --libs msgpack libuv 2>/dev/null)
PLUGINS := $(BIN)/plugins/example.so $(BIN)/plugins/test-badabi.so $(BIN)/plugins/test-abi1.so \
	$(BIN)/plugins/test-dup.so $(BIN)/plugins/test-progress.so

.PHONY: plugins
plugins: $(PLUGINS)

$(BIN)/plugins/example.so: examples/plugins/example.c include/jobq/handler.h
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_CFLAGS) $< -o $@ $(PLUGIN_LIBS)

$(BIN)/plugins/test-%.so: tests/plugins/%.c include/jobq/handler.h
	@mkdir -p $(dir $@)
	$(CC) $(PLUGIN_CFLAGS) $< -o $@ $(PLUGIN_LIBS)

deps:
	@sh scripts/deps.sh

test-deps:
	@sh scripts/deps.sh test

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t --jobs 2; done

integration: all plugins
	JQ_BIN_DIR=$(abspath $(BIN)) /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

test: test-deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration

check: test-deps
	$(MAKE) SAN=1 all
	$(MAKE) SAN=1 unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(MAKE) SAN=1 integration

# ---- fuzzing (tests/fuzz/README.md): libFuzzer targets built with clang
# under ASan + UBSan, from their own objects in build/fuzz. `make fuzz
# FUZZ_SECONDS=N` runs each target N seconds on a scratch copy of its seed
# corpus; `make fuzz-smoke` (CI) runs each briefly, after replaying every
# input in tests/fuzz/regress/<target>/ (the crashes found so far).
.PHONY: fuzz fuzz-smoke fuzz-build
FUZZ_CC := clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -g -O1 $(WARN) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -Iinclude \
	-iquote common -iquote producer $(call iquote,$(CONSUMER_DIRS)) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_TARGETS := fuzz_job fuzz_msgpack fuzz_json fuzz_url fuzz_chunks fuzz_cli_json fuzz_reply
FUZZ_BIN := $(FUZZ_TARGETS:%=build/fuzz/%)
FUZZ_LIB_OBJ := $(COMMON_SRC:%.c=build/fuzz/%.o) $(PRODUCER_LIB_SRC:%.c=build/fuzz/%.o) \
	build/fuzz/producer/cli_util.o

build/fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)

# The reply arena is the consumer's: linked in, with its big-string
# threshold lowered so that inputs of -max_len bytes reach that path.
build/fuzz/fuzz_reply: build/fuzz/consumer/redis/reply.o build/fuzz/consumer/redis/bulkcap.o
build/fuzz/fuzz_reply: FUZZ_CFLAGS += -DJQ_REPLY_OWN_MIN=64

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

# ---- chaos (tests/chaos/chaos.py): load plus random faults for
# CHAOS_SECONDS, then every job checked. CI runs a short one.
CHAOS_SECONDS ?= 60
.PHONY: chaos
chaos: test-deps all
	JQ_BIN_DIR=$(abspath $(BIN)) CHAOS_SECONDS=$(CHAOS_SECONDS) /usr/bin/python3 tests/chaos/chaos.py $(CHAOS_ARGS)

# The compose stack with real containers (Docker, or podman where no Docker
# engine answers): tests/compose/run.sh.
test-compose: test-deps
	bash tests/compose/run.sh

test-systemd: test-deps all
	bash tests/systemd/run.sh

run: deps all
	@sh scripts/run-local.sh $(RUN_ARGS)

bench: deps all
	/usr/bin/python3 bench/bench.py

# jobq beside BullMQ and bee-queue (issue 8); BENCH_QUICK=1 for a 2-minute run.
bench-compare: all $(BUILD)/bench/floor bench/compare/node_modules/.package-lock.json
	/usr/bin/python3 bench/compare/compare.py $(BENCH_ARGS)

# (b0)'s responder: the latency floor, in C (bench/compare/floor.c).
$(BUILD)/bench/floor: bench/compare/floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@ $(shell pkg-config --libs hiredis)

# The seed notes' claims, jobq beside Node.js (issue 15): writes docs/SEED.md.
.PHONY: bench-seed
bench-seed: all $(BUILD)/bench/pool_start
	@sh scripts/deps.sh bench
	/usr/bin/python3 bench/seed/seed.py $(BENCH_ARGS)

$(BUILD)/bench/pool_start: bench/seed/pool_start.c $(BUILD)/consumer/worker/pool.o \
		$(BUILD)/consumer/worker/pool_policy.o $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS)

# Handler processes (--proc) in Python and Node against exec and BullMQ.
.PHONY: bench-workerproc
bench-workerproc: all bench/compare/node_modules/.package-lock.json
	/usr/bin/python3 bench/workerproc.py $(BENCH_ARGS)

bench/compare/node_modules/.package-lock.json: bench/compare/package-lock.json
	@sh scripts/deps.sh bench
	cd bench/compare && npm ci --no-audit --no-fund

# The consumer's include graph (docs/ARCHITECTURE.md), drawn from the real
# #include lines by scripts/include-graph.py and graphviz's dot (`scripts/deps.sh
# docs` installs it): one node per folder in docs/include-graph.svg, one per
# module in docs/include-graph-files.svg. Fails, naming the includes, when
# the folders include each other in a circle.
.PHONY: graph
GRAPH_SVG := docs/include-graph.svg docs/include-graph-files.svg
graph:
	@sh scripts/deps.sh docs
	@command -v dot >/dev/null 2>&1 || { echo "make graph: graphviz's dot is missing (apt-get install graphviz)" >&2; exit 1; }
	@mkdir -p $(BUILD)
	/usr/bin/python3 scripts/include-graph.py > $(BUILD)/include-graph.dot
	/usr/bin/python3 scripts/include-graph.py --files > $(BUILD)/include-graph-files.dot
	dot -Tsvg $(BUILD)/include-graph.dot -o docs/include-graph.svg
	dot -Tsvg $(BUILD)/include-graph-files.dot -o docs/include-graph-files.svg

# Man pages, from Markdown next to the docs (go-md2man): jobq(1) is
# docs/CLI.md and jobq-protocol(7) docs/PROTOCOL.md under a man header of
# their own; jobq-consumer(1) lists its options from --help, that is from
# the option table. Built by `make man` and `make install`, not by `make`.
MAN_DIR := build/man
MAN_PAGES := $(MAN_DIR)/jobq.1 $(MAN_DIR)/jobq-consumer.1 $(MAN_DIR)/jobq-protocol.7
MAN_SUBST := sed -e 's|@VERSION@|$(JQ_VERSION)|'

man: $(MAN_PAGES)

$(MAN_DIR)/jobq.1: docs/man/jobq.1.md docs/CLI.md
	@mkdir -p $(dir $@)
	{ $(MAN_SUBST) docs/man/jobq.1.md; awk '/^## Library/ { exit } /^## / { on = 1 } on' docs/CLI.md; } \
		| go-md2man -out $@

$(MAN_DIR)/jobq-protocol.7: docs/man/jobq-protocol.7.md docs/PROTOCOL.md
	@mkdir -p $(dir $@)
	{ $(MAN_SUBST) docs/man/jobq-protocol.7.md; sed -n '/^## /,$$p' docs/PROTOCOL.md; } | go-md2man -out $@

$(MAN_DIR)/jobq-consumer.1: docs/man/jobq-consumer.1.md docs/man/options.awk $(BIN)/jobq-consumer
	@mkdir -p $(dir $@)
	$(BIN)/jobq-consumer --help | awk -f docs/man/options.awk > $@.options
	$(MAN_SUBST) -e '/^@OPTIONS@$$/ { r $@.options' -e 'd; }' docs/man/jobq-consumer.1.md | go-md2man -out $@
	rm -f $@.options

# `make install` / `make uninstall` honour PREFIX and DESTDIR (a staging
# tree for packagers), and the usual *DIR variables. Files that name a
# path (jobq.pc) are written at install time, so a PREFIX given only to
# `make install` is still right. Uninstall removes exactly what install
# wrote, and the directories that are jobq's own (include/jobq); shared
# ones such as $(BINDIR) stay, even when empty, as they belong to the
# system, not to us.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DOCDIR ?= $(PREFIX)/share/doc/jobq
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
JQ_HEADERS = $(wildcard include/jobq/*.h)

install: all man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/jobq \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7
	# jobq-exec-guard must sit next to jobq-consumer: exec.c looks for it
	# there (without it, exec jobs fall back to the slower self-exec guard).
	install -m 755 $(BIN)/jobq $(BIN)/jobq-consumer $(BIN)/jobq-exec-guard $(DESTDIR)$(BINDIR)/
	install -m 644 $(LIBJOBQ) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(LIBJOBQ_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(LIBJOBQ_SO)) $(DESTDIR)$(LIBDIR)/$(JQ_SONAME)
	ln -sf $(JQ_SONAME) $(DESTDIR)$(LIBDIR)/libjobq.so
	install -m 644 $(JQ_HEADERS) $(DESTDIR)$(INCLUDEDIR)/jobq/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
		-e 's|@VERSION@|$(JQ_VERSION)|' packaging/jobq.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/jobq.pc
	sed -e 's|@BINDIR@|$(BINDIR)|' packaging/jobq-consumer.service.in \
		> $(DESTDIR)$(SYSTEMDUNITDIR)/jobq-consumer.service
	install -m 644 packaging/jobq.default $(DESTDIR)$(DOCDIR)/jobq.default
	install -m 644 $(filter %.1,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(filter %.7,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man7/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/jobq $(DESTDIR)$(BINDIR)/jobq-consumer $(DESTDIR)$(BINDIR)/jobq-exec-guard
	rm -f $(DESTDIR)$(LIBDIR)/libjobq.a $(DESTDIR)$(LIBDIR)/libjobq.so \
		$(DESTDIR)$(LIBDIR)/$(JQ_SONAME) $(DESTDIR)$(LIBDIR)/$(notdir $(LIBJOBQ_SO))
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/jobq/,$(notdir $(JQ_HEADERS)))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/jobq
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/jobq.pc
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/jobq-consumer.service $(DESTDIR)$(DOCDIR)/jobq.default
	-rmdir $(DESTDIR)$(DOCDIR)
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(filter %.1,$(MAN_PAGES)))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man7/,$(notdir $(filter %.7,$(MAN_PAGES))))
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig; fi

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
