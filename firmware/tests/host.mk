# Host build of the allocator (included by firmware/Makefile): `make -C firmware host`
#   build/host/<config>/libmemhil_mem.so   ctypes target for tests/firmware (debug and release configs)
#   build/host/leak_demo_vg                 leak_demo logic with valgrind mempool annotations
HOST_CC     ?= gcc
HOST_BUILD  := build/host
HOST_SRCS   := kernel/mem/los_memory.c kernel/mem/los_memstat.c kernel/mem/los_memcheck.c \
               kernel/mem/memhil_trace.c kernel/lib/los_printf.c tests/host_port.c
HOST_CFLAGS := -std=gnu11 -g -O1 -fPIC -Wall -Wextra -Werror -Ikernel/include -Ikernel/mem -Iapps/leak_demo
HOST_CFLAGS_debug   := -DMEMHIL_CONFIG_NAME='"debug"' -DLOSCFG_MEM_DEBUG -DLOSCFG_MEM_MUL_MODULE \
                       -DLOSCFG_MEM_LEAKCHECK -DLOSCFG_MEM_TRACE
HOST_CFLAGS_release := -DMEMHIL_CONFIG_NAME='"release"' -DLOSCFG_MEM_MUL_MODULE
HOST_HDRS   := $(wildcard kernel/include/*.h kernel/mem/*.h apps/leak_demo/*.h)

HOST_LIBS := $(foreach c,$(CONFIGS),$(HOST_BUILD)/$(c)/libmemhil_mem.so)

.PHONY: host
host: $(HOST_LIBS) $(HOST_BUILD)/leak_demo_vg

$(HOST_BUILD)/%/libmemhil_mem.so: $(HOST_SRCS) tests/host_sysmem.c $(HOST_HDRS) tests/host.mk
	@mkdir -p $(@D)
	@echo "HOSTCC $@"
	$(Q)$(HOST_CC) $(HOST_CFLAGS) $(HOST_CFLAGS_$*) -shared -o $@ $(HOST_SRCS) tests/host_sysmem.c

$(HOST_BUILD)/leak_demo_vg: $(HOST_SRCS) tests/leak_demo_host.c apps/leak_demo/app.c apps/leak_demo/workers.c \
                            $(HOST_HDRS) tests/host.mk
	@mkdir -p $(@D)
	@echo "HOSTCC $@"
	$(Q)$(HOST_CC) $(HOST_CFLAGS) $(HOST_CFLAGS_release) -O0 -fno-inline -DMEMHIL_VALGRIND -o $@ $(HOST_SRCS) \
	    tests/leak_demo_host.c apps/leak_demo/app.c apps/leak_demo/workers.c

host-clean:
	rm -rf $(HOST_BUILD)
