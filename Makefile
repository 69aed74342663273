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
LDLIBS    += $(shell pkg-config --libs $(PKGS)) -lpg_query
# health checks run in threads
LDLIBS    += -pthread
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=all

SHARED_SRC := $(wildcard shared/*.c)
CTL_SRC    := $(wildcard ctl/*.c)
CTL_LIB    := $(filter-out ctl/main.c,$(CTL_SRC))
UNIT_SRC   := $(wildcard t/unit/*.c)
MOD_SRC    := $(wildcard ngx_module/*.c ngx_module/*.h shared/*.c shared/*.h)

HDRS       := $(wildcard shared/*.h ctl/*.h)

MIGCTL     := $(B)/migctl
MIGCTL_SAN := $(B)/san/migctl
MODULE     := $(B)/ngx_http_maintenance_module.so
UNITS      := $(patsubst t/unit/%.c,$(B)/t/%,$(UNIT_SRC))
UNITS_SAN  := $(patsubst t/unit/%.c,$(B)/san/t/%,$(UNIT_SRC))

.PHONY: all deps module migctl test test-valgrind demo bench install clean

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
# flock: two makes at once must not configure into one build dir together
$(B)/nginx/Makefile: config
	@mkdir -p $(B)/nginx
	exec 9>$(B)/.nginx.lock && flock 9 && \
	cd $(NGINX_SRC) && \
	    flags=; \
	    if [ -f conf_flags ]; then \
	        flags=$$(bash -c '. ./conf_flags; printf "%s\n" "$${NGX_CONF_FLAGS[@]}"' | grep -v -- '--with-compat'); \
	    fi; \
	    ./configure --with-compat $$flags \
	        --with-cc-opt="$(WARN) -Wno-unused-parameter" \
	        --add-dynamic-module=$(CURDIR) \
	        --builddir=$(CURDIR)/$(B)/nginx > $(CURDIR)/$(B)/nginx/configure.log 2>&1 \
	    || { tail -20 $(CURDIR)/$(B)/nginx/configure.log; exit 1; }

# the .so is replaced by rename: a running nginx keeps the file it mapped
$(MODULE): $(B)/nginx/Makefile $(MOD_SRC)
	flock $(B)/.nginx.lock $(MAKE) -f $(CURDIR)/$(B)/nginx/Makefile -C $(NGINX_SRC) modules
	cp $(B)/nginx/ngx_http_maintenance_module.so $@.tmp
	mv -f $@.tmp $@

deps:
	@bash .ci/deps

test: deps all $(MIGCTL_SAN) $(UNITS_SAN)
	@[ -z "$(UNITS_SAN)" ] || prove --exec '' $(UNITS_SAN)
	MIGCTL=$(CURDIR)/$(MIGCTL_SAN) prove -I t/lib t/*.t

test-valgrind: deps all
	MIGCTL_WRAP="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	    MIGCTL=$(CURDIR)/$(MIGCTL) prove -I t/lib $(or $(T),t/maintenance_cli.t)

demo: deps all
	bash conf-examples/demo.sh

bench: deps all
	bash t/bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/nginx/modules
	install -m 755 $(MIGCTL) $(DESTDIR)$(PREFIX)/bin/migctl
	install -m 644 $(MODULE) $(DESTDIR)$(PREFIX)/lib/nginx/modules/

clean:
	rm -rf $(B)
