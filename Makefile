# ndesmock - mock Microsoft NDES/SCEP server.
# make            build build/ndesmock
# make run        install missing build dependencies (as root), build, run on embedded defaults
# make test       install missing dependencies (as root), build, run unit + integration tests
# make lint       warnings as errors, plus cppcheck when present
# SANITIZE=address,undefined  build with sanitizers;  V=1  show commands
# LINK=dynamic  link the server with the shared libraries;  PIE=1  build it as a PIE

VERSION   := 0.1.0
PKGS      := libevent libevent_pthreads libevent_openssl openssl libconfig jansson
# a sanitizer build goes to its own directory (build-san) so it never mixes objects
BUILD     ?= build$(if $(SANITIZE),-san)
CC        ?= cc

Q := @
ifeq ($(V),1)
Q :=
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-missing-field-initializers
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -DNDESMOCK_VERSION=\"$(VERSION)\" -Iinclude $(WARN) \
           -MMD -MP -pthread $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -pthread
# The server itself links these libraries statically (their .a files come with
# the same -dev packages): exec plus dynamic linking of the shared ones was ~6 of
# its ~14 ms to the first answer (docs/performance.md, Start-up). The server
# never loads OpenSSL's legacy provider (a module linking the shared libcrypto):
# single DES and MD4 come from src/util/oldcrypto.c. LINK=dynamic links the
# shared libraries; tests, fuzzers and tools always do.
LINK    ?= static
ifeq ($(LINK),static)
SERVER_LIBS = -Wl,-Bstatic $(PKG_LIBS) -Wl,-Bdynamic -ldl -pthread
else
SERVER_LIBS = $(LDLIBS)
endif
# ...and as a position-dependent executable, as Go builds micromdm's: a PIE holds
# ~19,000 relative relocations (libcrypto's tables), and applying them at exec
# (copying ~100 pages) was another ~2 ms of start-up. The cost: no address
# randomisation of the executable itself (libc, heap, stacks and mappings are
# still randomised). PIE=1 builds a PIE (with packed relocations).
PIE     ?= 0
ifeq ($(PIE),1)
SERVER_LDFLAGS = -pie -Wl,-z,pack-relative-relocs
else
SERVER_LDFLAGS = -no-pie
endif
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SANITIZE)
# OpenSSL's legacy provider (loaded by the unit tests) leaks a little at start-up
# (openssl#16516): suppressed;
# libcrypto has no frame pointers, hence the slow unwinder.
export ASAN_OPTIONS  := detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=0
export LSAN_OPTIONS  := suppressions=$(CURDIR)/fuzz/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
endif
ifeq ($(WERROR),1)
CFLAGS  += -Werror
endif

SRCS     := $(sort $(wildcard src/*/*.c))
LIB_SRCS := $(filter-out src/main/%,$(SRCS))
OBJS     := $(SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
TEST_SRCS := $(sort $(wildcard tests/unit/*.c))
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all run test unit integration deps test-deps clean lint bench fuzz check-valgrind
all: $(BUILD)/ndesmock

deps:
	$(Q)sh .ci/install-deps build

test-deps:
	$(Q)sh .ci/install-deps test

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

# relink when LINK or PIE changes
LINK_STAMP := $(BUILD)/link-$(LINK)-pie$(PIE).stamp
$(LINK_STAMP):
	@mkdir -p $(BUILD)
	@rm -f $(BUILD)/link-*.stamp
	@touch $@

$(BUILD)/ndesmock: $(OBJS) $(LINK_STAMP)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(SERVER_LDFLAGS) -o $@ $(OBJS) $(SERVER_LIBS)

$(BUILD)/libndesmock.a: $(LIB_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libndesmock.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST-CC $<")
	$(Q)$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libndesmock.a $(LDLIBS) -lcriterion

run: deps
	$(Q)$(MAKE) --no-print-directory all
	./$(BUILD)/ndesmock

unit: $(TEST_BINS) $(BUILD)/ndesmock
	$(Q)NDESMOCK_BIN=$(CURDIR)/$(BUILD)/ndesmock sh tests/fixtures/make-fixtures.sh $(CURDIR)/$(BUILD)/fixtures
	$(Q)set -e; for t in $(TEST_BINS); do echo "== $$t"; NDESMOCK_BIN=$(CURDIR)/$(BUILD)/ndesmock NDESMOCK_FIXTURES=$(CURDIR)/$(BUILD)/fixtures $$t --jobs 2; done

integration: $(BUILD)/ndesmock $(BUILD)/scepreq
	$(Q)NDESMOCK_BIN=$(CURDIR)/$(BUILD)/ndesmock SCEPREQ=$(CURDIR)/$(BUILD)/scepreq bash tests/integration/run.sh

test: test-deps
	$(Q)$(MAKE) --no-print-directory unit integration

lint:
	$(Q)$(MAKE) --no-print-directory WERROR=1 all $(TEST_BINS)
	$(Q)if command -v cppcheck >/dev/null; then cppcheck --quiet --error-exitcode=1 --enable=warning,portability -Iinclude src; fi

clean:
	rm -rf $(BUILD)

-include $(OBJS:.o=.d)

$(BUILD)/scepreq: tests/tools/scepreq.c $(BUILD)/libndesmock.a
	@$(if $(Q),echo "  TOOL    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libndesmock.a $(LDLIBS)

bench: all $(BUILD)/scepreq
	$(Q)sh .ci/install-deps bench
	$(Q)NDESMOCK_BIN=$(CURDIR)/$(BUILD)/ndesmock SCEPREQ=$(CURDIR)/$(BUILD)/scepreq bash bench/run.sh

fuzz:
	$(Q)sh .ci/install-deps fuzz
	$(Q)bash fuzz/run.sh $(FUZZ_SECONDS)

check-valgrind: all $(BUILD)/scepreq
	$(Q)READY_TRIES=4800 SCEP_CLIENT_TIMEOUT=120 NDESMOCK_WRAP="valgrind --suppressions=$(CURDIR)/tests/valgrind.supp --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 -q" $(MAKE) --no-print-directory integration
