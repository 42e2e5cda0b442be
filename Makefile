# kl - Keylime push-model attestation as composable C tools.
# GNU make. Libraries are found with pkg-config; `make deps` installs what is missing.

PKG_CONFIG ?= pkg-config
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
UNITDIR    ?= /etc/systemd/system
DESTDIR    ?=
BUILD      ?= build
SAN        ?=

PROGS = kl-register kl-session kl-negotiate kl-quote kl-submit kl-agent

# Each program links only the lib modules and libraries it uses. kl_crypto
# needs libcrypto; kl_crypto_rand (its random numbers) needs no library.
BASE_LIB  = kl_rc kl_log kl_json kl_util kl_file kl_cli kl_config kl_toml kl_prog
BASE_PKGS = jansson
TSS_PKGS  = tss2-esys tss2-mu tss2-tctildr tss2-rc
TPM_LIB   = kl_tpm kl_akfile kl_crypto kl_crypto_rand
TPM_PKGS  = $(TSS_PKGS) libcrypto
HTTP_LIB  = kl_http kl_crypto_rand

kl-register_LIB   = $(BASE_LIB) $(HTTP_LIB) $(TPM_LIB)
kl-register_PKGS  = $(BASE_PKGS) libcurl $(TPM_PKGS)
kl-session_LIB    = $(BASE_LIB) $(HTTP_LIB) $(TPM_LIB) kl_identity kl_api
kl-session_PKGS   = $(BASE_PKGS) libcurl $(TPM_PKGS)
kl-negotiate_LIB  = $(BASE_LIB) $(HTTP_LIB) $(TPM_LIB) kl_api kl_ima kl_uefi
kl-negotiate_PKGS = $(BASE_PKGS) libcurl $(TPM_PKGS)
kl-quote_LIB      = $(BASE_LIB) $(TPM_LIB) kl_identity kl_ima kl_uefi
kl-quote_PKGS     = $(BASE_PKGS) $(TPM_PKGS)
kl-submit_LIB     = $(BASE_LIB) $(HTTP_LIB) kl_api
kl-submit_PKGS    = $(BASE_PKGS) libcurl
kl-agent_LIB      = $(BASE_LIB) kl_backoff kl_status kl_crypto_rand
kl-agent_PKGS     = $(BASE_PKGS)

ALL_PKGS = $(BASE_PKGS) libcurl $(TPM_PKGS)

# The wrapper targets install missing packages first, then run make again.
WRAPPERS = deps clean check asan valgrind demo bench
ifeq ($(filter $(WRAPPERS),$(MAKECMDGOALS)),)
MISSING := $(shell for p in $(ALL_PKGS); do $(PKG_CONFIG) --exists $$p || echo $$p; done)
ifneq ($(MISSING),)
$(error missing libraries: $(MISSING) -- run scripts/deps (Debian packages libtss2-dev libcurl4-openssl-dev libssl-dev libjansson-dev))
endif
endif

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra -Werror -Wformat=2 -Wvla -Wshadow \
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
.PHONY: all check asan valgrind demo bench install clean deps units test-run

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

# `make check`: install what is missing, build with -Werror, run every test.
check:
	scripts/deps
	$(MAKE) all units
	scripts/run-tests $(BUILD)

asan:
	scripts/deps
	$(MAKE) BUILD=build-asan SAN=1 all units
	KL_ASAN=1 scripts/run-tests build-asan

valgrind:
	scripts/deps
	$(MAKE) all units
	KL_WRAP=valgrind scripts/run-tests $(BUILD)

demo:
	scripts/deps
	$(MAKE) all
	scripts/demo $(BUILD)

bench:
	scripts/deps
	$(MAKE) all units
	scripts/bench $(BUILD)

install: all
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(addprefix $(BUILD)/bin/,$(PROGS)) $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(UNITDIR)
	for u in dist/systemd/*; do \
		sed 's|/usr/local/bin/|$(BINDIR)/|g' "$$u" >$(DESTDIR)$(UNITDIR)/$${u##*/} && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# A simulated fleet against the test verifier: a benchmark, not in check (docs/fleet.md).
.PHONY: fleet
fleet:
	scripts/deps
	$(MAKE) all
	scripts/fleet $(BUILD)
