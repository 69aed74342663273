# migctl: the nginx maintenance module and the migctl CLI.
#   make            build/ngx_http_maintenance_module.so and build/migctl
#   make test       every test (prove), migctl under ASan/UBSan
#   make demo       an incident, end to end, on a local stack
#   make bench      the benchmarks
#   make install    honours PREFIX and DESTDIR

NGINX_SRC ?= /usr/share/nginx/src
PREFIX    ?= /usr/local
DESTDIR   ?=
B         := build

CC        ?= cc
OPT       ?= -O2 -g
WARN      := -Wall -Wextra -Werror
PKGS      := hiredis libpq libconfig jansson libcurl libprotobuf-c
CFLAGS    += $(OPT) $(WARN) -std=gnu11 -Ishared -Ictl \
             $(shell pkg-config --cflags $(PKGS))
# libpq and libcurl: headers only, dlopen()ed when first called (ctl/lazy.c)
LDLIBS    += $(shell pkg-config --libs $(filter-out libpq libcurl,$(PKGS))) \
             -lpg_query -ldl
# health checks run in threads
LDLIBS    += -pthread
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=all

# "make" on a machine without the build dependencies names the Debian
# packages (make test, demo and bench install them first, as root)
BUILD_GOALS := all module migctl install deb man
ifneq ($(if $(MAKECMDGOALS),$(filter $(BUILD_GOALS),$(MAKECMDGOALS)),all),)
ifneq ($(shell pkg-config --exists $(PKGS) && echo ok),ok)
$(error missing build dependencies: apt-get install $(shell bash .ci/deps --missing) (or run make test or make demo as root: they install them))
endif
endif

SHARED_SRC := $(wildcard shared/*.c)
CTL_SRC    := $(wildcard ctl/*.c)
CTL_LIB    := $(filter-out ctl/main.c,$(CTL_SRC))
UNIT_SRC   := $(wildcard t/unit/*.c)
MOD_SRC    := $(wildcard ngx_module/*.c ngx_module/*.h ngx_module/*.map \
                          shared/*.c shared/*.h)

HDRS       := $(wildcard shared/*.h ctl/*.h)

MIGCTL     := $(B)/migctl
MIGCTL_SAN := $(B)/san/migctl
MODULE     := $(B)/ngx_http_maintenance_module.so
UNITS      := $(patsubst t/unit/%.c,$(B)/t/%,$(UNIT_SRC))
UNITS_SAN  := $(patsubst t/unit/%.c,$(B)/san/t/%,$(UNIT_SRC))

.PHONY: all deps module migctl man test test-valgrind demo bench install \
        uninstall deb fuzz fuzzers clean

all: module migctl

migctl: $(MIGCTL)

module: $(MODULE)

$(B)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/san/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -c -o $@ $<

# linked aside and renamed: a test running the old binary is not disturbed
$(MIGCTL): $(patsubst %.c,$(B)/obj/%.o,$(SHARED_SRC) $(CTL_SRC))
	$(CC) $(CFLAGS) -o $@.tmp $^ $(LDLIBS)
	mv -f $@.tmp $@

$(MIGCTL_SAN): $(patsubst %.c,$(B)/san/obj/%.o,$(SHARED_SRC) $(CTL_SRC))
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@.tmp $^ $(LDLIBS)
	mv -f $@.tmp $@

$(B)/t/%: $(B)/obj/t/unit/%.o \
          $(patsubst %.c,$(B)/obj/%.o,$(SHARED_SRC) $(CTL_LIB))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/san/t/%: $(B)/san/obj/t/unit/%.o \
          $(patsubst %.c,$(B)/san/obj/%.o,$(SHARED_SRC) $(CTL_LIB))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)

# The module is built out of tree, as any third-party module: configure
# nginx's source (Debian's nginx-dev by default) with --with-compat and
# the flags stock nginx was built with, then build only the modules.
# configure runs in a private symlink copy of the source tree, with the
# checkout and the build dir given as relative paths: nginx's make rules
# rewrite any ".S" in a path (a checkout under /tmp/tmp.Sxyz) into ".o".
# flock: two makes at once must not configure into one build dir together
NGX_TREE := $(B)/nginx

$(NGX_TREE)/objs/Makefile: config
	@mkdir -p $(B)
	exec 9>$(B)/.nginx.lock && flock 9 && \
	rm -rf $(NGX_TREE) && \
	cp -rs $(abspath $(NGINX_SRC)) $(NGX_TREE) && \
	rm -rf $(NGX_TREE)/objs $(NGX_TREE)/Makefile && \
	cd $(NGX_TREE) && \
	    flags=; \
	    if [ -f conf_flags ]; then \
	        flags=$$(bash -c '. ./conf_flags; printf "%s\n" "$${NGX_CONF_FLAGS[@]}"' | grep -v -- '--with-compat'); \
	    fi; \
	    ./configure --with-compat $$flags \
	        --with-cc-opt="$(WARN) -Wno-unused-parameter" \
	        --with-ld-opt="-Wl,-z,relro -Wl,-z,now" \
	        --add-dynamic-module=../.. \
	        --builddir=objs > configure.log 2>&1 \
	    || { tail -20 configure.log; exit 1; }

# the .so is replaced by rename: a running nginx keeps the file it mapped
$(MODULE): $(NGX_TREE)/objs/Makefile $(MOD_SRC)
	flock $(B)/.nginx.lock $(MAKE) -C $(NGX_TREE) -f objs/Makefile modules
	cp $(NGX_TREE)/objs/ngx_http_maintenance_module.so $@.tmp
	mv -f $@.tmp $@

# libFuzzer targets (Debian's clang), under ASan and UBSan: t/fuzz/*.c;
# seeds and regression inputs in t/fuzz/corpus/TARGET, what a run finds in
# build/fuzz/work/TARGET, crashes in build/fuzz/crash-TARGET-*
FUZZ_CC    ?= clang
FUZZ_S     ?= 600
FUZZ_SRC   := $(wildcard t/fuzz/*.c)
FUZZERS    := $(patsubst t/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))
FUZZ_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
              -fno-omit-frame-pointer

$(B)/fuzz/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(B)/fuzz/%: $(B)/fuzz/obj/t/fuzz/%.o \
          $(patsubst %.c,$(B)/fuzz/obj/%.o,$(SHARED_SRC) $(CTL_LIB))
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# reply: the module's reply checks without nginx, linked with the static
# libhiredis the module bundles (config), else the shared one
FUZZ_MULTI   := $(shell $(CC) -print-multiarch 2>/dev/null)
FUZZ_HIREDIS := $(firstword $(wildcard \
                  $(shell pkg-config --variable=libdir hiredis)/libhiredis.a \
                  /usr/lib/$(FUZZ_MULTI)/libhiredis.a \
                  /usr/local/lib/libhiredis.a) -lhiredis)
FUZZ_REPLY   := ngx_module/ngx_http_maintenance_reply

# FUZZ_HIREDIS_SRC=DIR: hiredis's sources of the installed version (apt-get
# source hiredis) built into the reply target with the sanitizers and
# coverage, so that the fuzzer explores the reader itself too
ifneq ($(FUZZ_HIREDIS_SRC),)
FUZZ_HIREDIS := $(patsubst $(FUZZ_HIREDIS_SRC)/%.c,$(B)/fuzz/hiredis/%.o, \
                  $(wildcard $(addprefix $(FUZZ_HIREDIS_SRC)/, \
                    alloc.c hiredis.c net.c read.c sds.c)))

$(B)/fuzz/hiredis/%.o: $(FUZZ_HIREDIS_SRC)/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -O2 -g -std=c99 -D_GNU_SOURCE $(FUZZ_FLAGS) \
	    -fsanitize=fuzzer-no-link -c -o $@ $<
endif

$(B)/fuzz/obj/t/fuzz/reply.o $(B)/fuzz/obj/$(FUZZ_REPLY).o: \
    CFLAGS += -Ingx_module
$(B)/fuzz/obj/t/fuzz/reply.o $(B)/fuzz/obj/$(FUZZ_REPLY).o: $(FUZZ_REPLY).h

$(B)/fuzz/reply: $(B)/fuzz/obj/t/fuzz/reply.o $(B)/fuzz/obj/$(FUZZ_REPLY).o \
          $(patsubst %.c,$(B)/fuzz/obj/%.o,$(SHARED_SRC)) \
          $(filter %.o,$(FUZZ_HIREDIS))
	$(FUZZ_CC) $(CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ \
	    $(filter %.o,$^) $(filter-out %.o,$(FUZZ_HIREDIS))

fuzzers: $(FUZZERS)

fuzz: deps $(FUZZERS)
	FUZZ_S=$(FUZZ_S) bash t/fuzz/run.sh $(FUZZERS)

deps:
	@bash .ci/deps

test: deps all $(MIGCTL_SAN) $(UNITS_SAN) $(FUZZERS)
	@[ -z "$(UNITS_SAN)" ] || prove --exec '' $(UNITS_SAN)
	MIGCTL=$(CURDIR)/$(MIGCTL_SAN) prove -I t/lib t/*.t

test-valgrind: deps all
	MIGCTL_WRAP="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	    MIGCTL=$(CURDIR)/$(MIGCTL) prove -I t/lib $(or $(T),t/maintenance_cli.t)

demo: deps all
	bash conf-examples/demo.sh

bench: deps all
	bash t/bench/run.sh

# what "make install" writes, relative to $(DESTDIR)$(PREFIX); "make
# uninstall" removes exactly these, then the directories left empty
MODDIR    := lib/nginx/modules
SNIPPET   := share/nginx/modules-available/mod-http-maintenance.conf
DOCDIR    := share/doc/migctl
EXAMPLES  := $(wildcard conf-examples/*.*)
CI_EXAMPLES := $(wildcard conf-examples/ci/*)
MANS      := $(B)/man/migctl.1 $(B)/man/ngx_http_maintenance_module.5
INSTALLED := bin/migctl $(MODDIR)/ngx_http_maintenance_module.so $(SNIPPET) \
             share/man/man1/migctl.1 \
             share/man/man5/ngx_http_maintenance_module.5 \
             share/bash-completion/completions/migctl \
             $(DOCDIR)/README.md $(DOCDIR)/LICENSE \
             $(patsubst %,$(DOCDIR)/%,$(wildcard docs/*.md)) \
             $(patsubst conf-examples/%,$(DOCDIR)/examples/%,$(EXAMPLES) \
                 $(CI_EXAMPLES))

man: $(MANS)

$(B)/man/%: docs/%.scd
	@mkdir -p $(dir $@)
	scdoc < $< > $@.tmp
	mv -f $@.tmp $@

install: all man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/$(MODDIR) \
	    $(DESTDIR)$(PREFIX)/share/nginx/modules-available \
	    $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/man/man5 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	    $(DESTDIR)$(PREFIX)/$(DOCDIR)/examples/ci \
	    $(DESTDIR)$(PREFIX)/$(DOCDIR)/docs
	install -m 755 $(MIGCTL) $(DESTDIR)$(PREFIX)/bin/migctl
	install -m 644 $(MODULE) $(DESTDIR)$(PREFIX)/$(MODDIR)/
	printf 'load_module %s;\n' \
	    $(PREFIX)/$(MODDIR)/ngx_http_maintenance_module.so \
	    > $(DESTDIR)$(PREFIX)/$(SNIPPET)
	chmod 644 $(DESTDIR)$(PREFIX)/$(SNIPPET)
	install -m 644 $(B)/man/migctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 $(B)/man/ngx_http_maintenance_module.5 \
	    $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 ctl/completion.bash \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/migctl
	install -m 644 README.md LICENSE $(DESTDIR)$(PREFIX)/$(DOCDIR)/
	$(if $(wildcard docs/*.md),install -m 644 $(wildcard docs/*.md) \
	    $(DESTDIR)$(PREFIX)/$(DOCDIR)/docs/)
	install -m 644 $(EXAMPLES) $(DESTDIR)$(PREFIX)/$(DOCDIR)/examples/
	install -m 644 $(CI_EXAMPLES) $(DESTDIR)$(PREFIX)/$(DOCDIR)/examples/ci/

# directories: ours (the doc dir) always; the others only in a DESTDIR
# staging tree, where nothing else lives
uninstall:
	cd $(DESTDIR)$(PREFIX) && rm -f $(INSTALLED)
	cd $(DESTDIR)$(PREFIX) && rmdir $(DOCDIR)/examples/ci \
	    $(DOCDIR)/examples $(DOCDIR)/docs \
	    $(DOCDIR) 2>/dev/null || true
	[ -z "$(DESTDIR)" ] || for d in $(sort $(dir $(INSTALLED))); do \
	    d=$(abspath $(DESTDIR)$(PREFIX)/$$d); \
	    while [ "$$d" != "$(abspath $(DESTDIR))" ]; do \
	        [ ! -d "$$d" ] || rmdir "$$d" 2>/dev/null || break; \
	        d=$$(dirname "$$d"); \
	    done; \
	done

# Debian packages, built as Debian builds its nginx modules (debhelper,
# dh_nginx), from a copy of the tracked files: build/deb/*.deb
DEB_DIR := $(B)/deb

deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	git ls-files -z | xargs -0 cp --parents -t $(DEB_DIR)/src
	cd $(DEB_DIR)/src && dpkg-buildpackage -us -uc -b > ../build.log 2>&1 \
	    || { tail -30 ../build.log; exit 1; }
	lintian --fail-on error $(DEB_DIR)/*.changes
	ls $(DEB_DIR)/*.deb

clean:
	rm -rf $(B)

# the soak, not part of make test: two edges under wrk while the flag
# toggles, Redis restarts, nginx reloads and worker 0 is killed
SOAK_S ?= 600

.PHONY: soak

soak: deps all $(MIGCTL_SAN)
	SOAK_S=$(SOAK_S) MIGCTL=$(CURDIR)/$(MIGCTL_SAN) bash t/soak/run.sh
