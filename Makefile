# jobq: plain GNU make. `make` builds bin/, `make test` installs what the
# suite needs and runs it, `make check` runs it again under ASan + UBSan.

PKGS := libuv hiredis msgpack json-c libcrypto
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
CFLAGS := -std=gnu11 $(OPT) $(WARN) $(SANFLAGS) -MMD -MP -Iinclude -iquote common -iquote producer -iquote consumer \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
LDFLAGS := $(SANFLAGS)

COMMON_SRC := common/log.c common/keys.c common/job.c common/codec.c common/url.c \
	common/config.c common/cpus.c
PRODUCER_LIB_SRC := producer/conn.c producer/jobq.c producer/wait.c producer/dead.c \
	producer/admin.c
PRODUCER_CLI_SRC := producer/cli.c producer/cli_util.c producer/cli_admin.c producer/cli_stats.c
CONSUMER_SRC := consumer/options.c consumer/rconn.c consumer/pool.c consumer/handlers.c \
	consumer/builtins.c consumer/worker.c consumer/fetch.c consumer/finish.c \
	consumer/heartbeat.c consumer/master.c consumer/sched.c consumer/chunks.c consumer/reclaim.c
CONSUMER_MAIN := consumer/main.c

UNIT_SRC := $(wildcard tests/unit/test_*.c)

COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
PRODUCER_LIB_OBJ := $(PRODUCER_LIB_SRC:%.c=$(BUILD)/%.o)
CONSUMER_OBJ := $(CONSUMER_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

LIBJOBQ := $(BUILD)/libjobq.a

.PHONY: all run test check unit integration bench install clean deps test-deps

all: $(BIN)/jobq-consumer $(BIN)/jobq $(LIBJOBQ)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBJOBQ): $(COMMON_OBJ) $(PRODUCER_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/jobq-consumer: $(BUILD)/$(CONSUMER_MAIN:.c=.o) $(CONSUMER_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BIN)/jobq: $(PRODUCER_CLI_SRC:%.c=$(BUILD)/%.o) $(LIBJOBQ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# Unit tests link every module but the mains, so a test can reach any of them.
$(BUILD)/tests/%: tests/unit/%.c $(COMMON_OBJ) $(PRODUCER_LIB_OBJ) $(CONSUMER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $(filter %.c %.o,$^) -o $@ $(LDLIBS) $(shell pkg-config --libs criterion)

deps:
	@sh scripts/deps.sh

test-deps:
	@sh scripts/deps.sh test

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t --jobs 2; done

integration: all
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

run: deps all
	@sh scripts/run-local.sh $(RUN_ARGS)

bench: deps all
	/usr/bin/python3 bench/bench.py

install: all
	install -d $(DESTDIR)/usr/local/bin
	install -m 755 bin/jobq bin/jobq-consumer $(DESTDIR)/usr/local/bin/

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
