# optout: PGXS build of record.
#
#   make                      build the extension (C++17, ICU)
#   make install              install into the PostgreSQL that pg_config names
#   make temp-install         install into ./tmp_install (a private copy of that
#                             PostgreSQL, so no root is needed to test)
#   make regresscheck         pg_regress suite on a throwaway server started
#                             from ./tmp_install (PGXS reserves "check")
#   make isolationcheck       isolation specs (specs/*.spec) the same way
#   make installcheck         the same suites against a running server (PGXS)
#
# WERROR=1 turns warnings into errors (CI sets it).

EXTENSION   = optout
EXTVERSION  = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big  = optout
CORE_SRCS   = $(sort $(wildcard src/core/*.cpp))
PG_SRCS     = $(sort $(wildcard src/pg/*.cpp))
OBJS        = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# Install scripts and upgrade scripts; the pg_regress test files share sql/.
DATA        = $(wildcard sql/$(EXTENSION)--*.sql)

REGRESS     = $(patsubst sql/%.sql,%,$(sort $(filter-out sql/$(EXTENSION)--%,$(wildcard sql/*.sql))))
REGRESS_OPTS = --encoding=UTF8 --no-locale
# Isolation specs (specs/*.spec): behaviour across concurrent sessions.
ISOLATION   = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --encoding=UTF8 --no-locale
EXTRA_CLEAN = tmp_install tmp_install_vg tmp_check_vg tmp_check_vg_out valgrind_logs

PG_CONFIG  ?= pg_config
PGXS       := $(shell $(PG_CONFIG) --pgxs)
PG_INCLUDEDIR_SERVER := $(shell $(PG_CONFIG) --includedir-server)

# PostgreSQL's headers are system headers to us: our -Wextra is for our code.
PG_CPPFLAGS = -isystem $(PG_INCLUDEDIR_SERVER) -I$(srcdir)/src/core -I$(srcdir)/src/pg
PG_CXXFLAGS = -std=c++17 -Wextra -Wno-register -fvisibility-inlines-hidden
ifeq ($(WERROR),1)
PG_CXXFLAGS += -Werror
endif

# PGXS links with the C compiler: name the C++ runtime, and the server's ICU.
SHLIB_LINK  = $(ICU_LIBS) -lstdc++

include $(PGXS)

# The server was built with LLVM, so PGXS also compiles every .cpp to bitcode
# with clang, without PG_CXXFLAGS: give clang the same language level.
COMPILE.cxx.bc = $(CLANG) -xc++ -std=c++17 -Wno-ignored-attributes -Wno-register $(BITCODE_CXXFLAGS) $(CPPFLAGS) -flto=thin -emit-llvm -c

$(OBJS): $(wildcard src/core/*.hpp src/core/optout/*.hpp src/pg/*.hpp)

# ---------------------------------------------------------------------------
# A private PostgreSQL installation for tests: a copy of the server's bin, lib
# and share directories with optout installed into it. PostgreSQL finds its
# share and lib directories relative to its own binary, so the copy is
# self-contained and nothing outside this tree is written.
TMP_INSTALL := $(abspath tmp_install)
TMP_BINDIR  := $(TMP_INSTALL)$(bindir)

.PHONY: temp-install regresscheck isolationcheck
temp-install: all
	rm -rf '$(TMP_INSTALL)'
	$(MKDIR_P) '$(TMP_INSTALL)$(bindir)' '$(TMP_INSTALL)$(pkglibdir)' '$(TMP_INSTALL)$(datadir)'
	cp -pR '$(bindir)/.' '$(TMP_INSTALL)$(bindir)/'
	cp -p '$(pkglibdir)'/*.so '$(TMP_INSTALL)$(pkglibdir)/'
	cp -pR '$(datadir)/.' '$(TMP_INSTALL)$(datadir)/'
	$(MAKE) install DESTDIR='$(TMP_INSTALL)'

regresscheck: temp-install
	$(top_builddir)/src/test/regress/pg_regress --temp-instance=./tmp_check \
	  --inputdir=./ --bindir='$(TMP_BINDIR)' $(REGRESS_OPTS) $(REGRESS)

isolationcheck: temp-install
	$(top_builddir)/src/test/isolation/pg_isolation_regress --temp-instance=./tmp_check_iso \
	  --inputdir=./ --outputdir=output_iso --bindir='$(TMP_BINDIR)' $(ISOLATION_OPTS) $(ISOLATION)
