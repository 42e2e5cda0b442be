# kl - Keylime push-model attestation as composable C tools.
# GNU make. Libraries are found with pkg-config; `make deps` installs what is missing.

PKG_CONFIG ?= pkg-config
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/kl
# systemd reads units, sysusers.d and tmpfiles.d under /usr/local/lib too.
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
# kl reads /etc/keylime whatever the prefix (upstream's path, KL_SYSCONFDIR).
SYSCONFDIR ?= /etc
DESTDIR    ?=
BUILD      ?= build
SAN        ?=

PROGS = kl-register kl-session kl-negotiate kl-quote kl-submit kl-verdict kl-agent kl-doctor

# Each program links only the lib modules and libraries it uses. kl_crypto
# needs libcrypto; kl_crypto_rand (its random numbers) needs no library.
BASE_LIB  = kl_rc kl_log kl_json kl_util kl_file kl_cli kl_config kl_toml kl_prog kl_version
BASE_PKGS = jansson
TSS_PKGS  = tss2-esys tss2-mu tss2-tctildr tss2-rc
TPM_LIB   = kl_tpm kl_akfile kl_crypto kl_crypto_rand
TPM_PKGS  = $(TSS_PKGS) libcrypto
HTTP_LIB  = kl_http kl_crypto_rand

kl-register_LIB   = $(BASE_LIB) $(HTTP_LIB) $(TPM_LIB) kl_hash_ek
kl-register_PKGS  = $(BASE_PKGS) libcurl $(TPM_PKGS)
kl-session_LIB    = $(BASE_LIB) $(HTTP_LIB) $(TPM_LIB) kl_identity kl_api kl_token
kl-session_PKGS   = $(BASE_PKGS) libcurl $(TPM_PKGS)
kl-negotiate_LIB  = $(BASE_LIB) $(HTTP_LIB) $(TPM_LIB) kl_api kl_ima kl_uefi kl_token
kl-negotiate_PKGS = $(BASE_PKGS) libcurl $(TPM_PKGS)
kl-quote_LIB      = $(BASE_LIB) $(TPM_LIB) kl_identity kl_ima kl_uefi
kl-quote_PKGS     = $(BASE_PKGS) $(TPM_PKGS)
kl-submit_LIB     = $(BASE_LIB) $(HTTP_LIB) kl_api kl_token
kl-submit_PKGS    = $(BASE_PKGS) libcurl
kl-verdict_LIB    = $(BASE_LIB) $(HTTP_LIB) kl_api
kl-verdict_PKGS   = $(BASE_PKGS) libcurl
kl-agent_LIB      = $(BASE_LIB) kl_backoff kl_status kl_metrics kl_crypto_rand
kl-agent_PKGS     = $(BASE_PKGS)
kl-doctor_LIB     = $(BASE_LIB) $(HTTP_LIB) $(TPM_LIB) kl_hash_ek kl_api
kl-doctor_PKGS    = $(BASE_PKGS) libcurl $(TPM_PKGS)

ALL_PKGS = $(BASE_PKGS) libcurl $(TPM_PKGS)

# The wrapper targets install missing packages first, then run make again;
# `make version` needs no library.
WRAPPERS = deps clean check asan valgrind demo bench version
ifeq ($(filter $(WRAPPERS),$(MAKECMDGOALS)),)
MISSING := $(shell for p in $(ALL_PKGS); do $(PKG_CONFIG) --exists $$p || echo $$p; done)
ifneq ($(MISSING),)
$(error missing libraries: $(MISSING) -- run scripts/deps (Debian packages libtss2-dev libcurl4-openssl-dev libssl-dev libjansson-dev))
endif
endif

# Warnings are errors in make check, asan, valgrind, bench and CI (they pass
# WERROR=-Werror); a plain `make` or a distribution build only shows them, so a
# newer compiler's new warning does not break a package build.
WERROR   ?=
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra $(WERROR) -Wformat=2 -Wvla -Wshadow \
            -fstack-protector-strong -fPIE -MMD -MP
CPPFLAGS += -D_DEFAULT_SOURCE -D_GNU_SOURCE -Ilib
LDFLAGS  += -pie -Wl,-z,relro,-z,now
ifeq ($(SAN),)
CPPFLAGS += -D_FORTIFY_SOURCE=2
else
CFLAGS   += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
endif

pkg_cflags = $(shell $(PKG_CONFIG) --cflags $(1))
pkg_libs   = $(shell $(PKG_CONFIG) --libs $(1))
CPPFLAGS  += $(call pkg_cflags,$(ALL_PKGS))

LIB_SRCS  = $(wildcard lib/*.c)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNITS     = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

.DELETE_ON_ERROR:
.PHONY: all check asan valgrind demo bench install uninstall deb clean deps units test-run \
	version FORCE

# kl's version (--version): the package version from debian/changelog (without
# a Debian revision), then "+git." and `git describe --always --dirty` when this
# directory is the top of a git checkout (not when a tarball is unpacked inside
# another repository). `make KL_VERSION=...` overrides it.
KL_BASE_VERSION := $(shell head -n 1 debian/changelog 2>/dev/null | tr -d '()' | \
                     awk '{ sub(/-[^-]*$$/, "", $$2); print $$2 }')
KL_GIT_VERSION  := $(shell [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$(CURDIR)" ] && \
                     git describe --always --dirty 2>/dev/null)
KL_VERSION      ?= $(or $(KL_BASE_VERSION),unknown)$(if $(KL_GIT_VERSION),+git.$(KL_GIT_VERSION))

version:
	@echo $(KL_VERSION)

# The header is rewritten only when the version changed, so that a build
# without changes recompiles nothing.
$(BUILD)/gen/kl_version_gen.h: FORCE
	@mkdir -p $(dir $@)
	@printf '#define KL_VERSION "%s"\n' '$(KL_VERSION)' >$@.new
	@if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi
$(BUILD)/lib/kl_version.o: $(BUILD)/gen/kl_version_gen.h
$(BUILD)/lib/kl_version.o: CPPFLAGS += -I$(BUILD)/gen
# tss2 has no run-time version call: kl_tpm reports the one it was built with.
$(BUILD)/lib/kl_tpm.o: CPPFLAGS += -DKL_TSS2_VERSION='"$(shell $(PKG_CONFIG) --modversion tss2-esys)"'

all: $(addprefix $(BUILD)/bin/,$(PROGS))

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

define link_prog
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/%.o,$(wildcard cmd/$(1)/*.c)) $(patsubst %,$(BUILD)/lib/%.o,$($(1)_LIB))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(call pkg_libs,$($(1)_PKGS))
endef
$(foreach p,$(PROGS),$(eval $(call link_prog,$(p))))

# Unit tests link every lib module; they are test programs, not product.
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(call pkg_libs,$(ALL_PKGS))

units: $(UNITS)

deps:
	scripts/deps

# The builds below use every CPU (`make check` is timed from a clean clone).
NPROC := $(shell nproc 2>/dev/null || echo 1)

# `make check`: install what is missing, build with -Werror, run every test.
check:
	scripts/deps
	$(MAKE) -j$(NPROC) WERROR=-Werror all units
	scripts/run-tests $(BUILD)

asan:
	scripts/deps
	$(MAKE) -j$(NPROC) WERROR=-Werror BUILD=build-asan SAN=1 all units
	KL_ASAN=1 scripts/run-tests build-asan

# One test file per CPU, not run-tests' four: under valgrind every kl program
# is CPU-bound (20-50 times slower), and eight files at once on 2 CPUs failed
# 20 tests on their time bounds (a status file not there within 0.5 s, a
# first step 3.5 s after a 1.5-s splay); with 2 at once they pass.
valgrind:
	scripts/deps
	$(MAKE) WERROR=-Werror all units
	KL_WRAP=valgrind KL_JOBS=$${KL_JOBS:-$(NPROC)} scripts/run-tests $(BUILD)

demo:
	scripts/deps
	$(MAKE) all
	scripts/demo $(BUILD)

bench:
	scripts/deps
	$(MAKE) WERROR=-Werror all units
	scripts/bench $(BUILD)
	scripts/soak $(BUILD)

# `make install PREFIX=/usr DESTDIR=...`: programs, man pages, systemd units
# (ExecStart rewritten to $(BINDIR)), the keylime user (sysusers.d), the
# commented example agent.conf in $(DOCDIR)/examples and, only when there is
# none yet, as $(SYSCONFDIR)/keylime/agent.conf. `make uninstall` removes all
# of it, and agent.conf only while it is still the unchanged example.
MAN1 = $(wildcard man/*.1)
MAN8 = $(wildcard man/*.8)
KLCONF = $(DESTDIR)$(SYSCONFDIR)/keylime

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR)/examples/agent.conf.d
	install -m 0755 $(addprefix $(BUILD)/bin/,$(PROGS)) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	for u in dist/systemd/*; do \
		sed 's|/usr/local/bin/|$(BINDIR)/|g' "$$u" >$(DESTDIR)$(UNITDIR)/$${u##*/} && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	install -m 0644 dist/sysusers.d/kl.conf $(DESTDIR)$(SYSUSERSDIR)/kl.conf
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 dist/agent.conf $(DESTDIR)$(DOCDIR)/examples/agent.conf
	install -m 0644 dist/agent.conf.d/*.conf.example $(DESTDIR)$(DOCDIR)/examples/agent.conf.d/
	install -d -m 0755 $(KLCONF) $(KLCONF)/agent.conf.d
	[ -e $(KLCONF)/agent.conf ] || install -m 0644 dist/agent.conf $(KLCONF)/agent.conf

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(PROGS))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8)))
	for u in dist/systemd/*; do rm -f $(DESTDIR)$(UNITDIR)/$${u##*/}; done
	rm -f $(DESTDIR)$(SYSUSERSDIR)/kl.conf
	rm -f $(DESTDIR)$(DOCDIR)/README.md $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(wildcard docs/*.md)))
	rm -f $(DESTDIR)$(DOCDIR)/examples/agent.conf \
		$(addprefix $(DESTDIR)$(DOCDIR)/examples/agent.conf.d/,$(notdir $(wildcard dist/agent.conf.d/*)))
	-rmdir $(DESTDIR)$(DOCDIR)/examples/agent.conf.d $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null
	! cmp -s dist/agent.conf $(KLCONF)/agent.conf || rm -f $(KLCONF)/agent.conf
	-rmdir $(KLCONF)/agent.conf.d $(KLCONF) 2>/dev/null

# The Debian package (debian/), unsigned, in the parent directory.
deb:
	dpkg-buildpackage -us -uc -b

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# `make fuzz`: one libFuzzer target per parser (tests/fuzz/<name>.c) into
# $(FUZZ_BUILD)/<name>, every lib module instrumented; clang and its fuzzer
# runtime (Debian libclang-rt-14-dev) come from scripts/deps. Run one with
# `$(FUZZ_BUILD)/toml tests/fuzz/corpus/toml`; tests/bats/fuzz.bats runs each
# for a few seconds.
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= $(BUILD)/fuzz
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS   = -O1 -g -fno-omit-frame-pointer -std=c11 -Wall -Wextra -Werror -Wformat=2 \
                -Wvla -Wshadow -MMD -MP $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_CPPFLAGS = $(filter-out -D_FORTIFY_SOURCE=%,$(CPPFLAGS))
FUZZ_NAMES    = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/*.c))
FUZZ_LIB_OBJS = $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRCS))

.PHONY: fuzz
fuzz: $(addprefix $(FUZZ_BUILD)/,$(FUZZ_NAMES))

$(FUZZ_BUILD)/obj/lib/kl_version.o: $(BUILD)/gen/kl_version_gen.h
$(FUZZ_BUILD)/obj/lib/kl_version.o: FUZZ_CPPFLAGS += -I$(BUILD)/gen
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

$(addprefix $(FUZZ_BUILD)/,$(FUZZ_NAMES)): $(FUZZ_BUILD)/%: $(FUZZ_BUILD)/obj/tests/fuzz/%.o $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(call pkg_libs,$(ALL_PKGS))
# A simulated fleet against the test verifier: a benchmark, not in check (docs/fleet.md).
.PHONY: fleet
fleet:
	scripts/deps
	$(MAKE) all
	scripts/fleet $(BUILD)
