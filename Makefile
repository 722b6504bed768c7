# CGOA firmware. `make shelf` boots the default shelf; `make test` runs every test.
# Everything built lands under build/ (ignored by git).

SHELL      := /bin/bash
GO         ?= go
ROLES      := mgmt switch epon
ROLE       ?= mgmt
VERSION    := 0.1.0
REVISION   := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
BUILT      := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS     = -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION) -X main.built=$(BUILT) -X main.trustedKey=$(shell cat build/keys/dev.pub)
KERNEL     := build/kernel/vmlinux
PKGS_NOFW  = $(shell $(GO) list ./... | grep -v '/firmware$$')
# Packages that boot QEMU shelves: run one at a time after the rest, so their emulated blades
# do not compete with CPU-heavy unit tests for the two cores.
PKGS_VM    = $(shell $(GO) list ./qemu/...)
PKGS_UNIT  = $(filter-out $(PKGS_VM),$(PKGS_NOFW))
TEST_FLAGS ?=

.PHONY: all deps kernel firmware image images shelf test test-unit test-firmware test-vm vet fmt-check \
	bench bench-boot bench-shelf bench-failover bench-switchover bench-ckpt bench-dba bench-snmp keys clean

all: images

# Host tools the build and the tests need (Debian packages). As root they are installed;
# otherwise the exact command is printed.
DEB_TOOLS := qemu-system-x86_64:qemu-system-x86 tshark:tshark snmpget:snmp snmpd:snmpd snmptrapd:snmptrapd \
	ip:iproute2 xz:xz-utils dpkg-deb:dpkg keepalived:keepalived iperf3:iperf3
deps:
	@missing=""; for t in $(DEB_TOOLS); do cmd=$${t%%:*}; pkg=$${t##*:}; \
		command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "deps: installing$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else echo "deps: missing$$missing; run: sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; fi; \
	fi

kernel: $(KERNEL)
$(KERNEL):
	@bash image/fetch-kernel.sh build/kernel

build/bin/firmware-%: build/keys/dev.key FORCE
	@mkdir -p build/bin
	CGO_ENABLED=0 $(GO) build -tags $* -trimpath -ldflags '$(LDFLAGS)' -o $@ ./firmware

firmware: build/bin/firmware-$(ROLE)

build/images/%.cpio: build/bin/firmware-% $(KERNEL) FORCE
	@$(GO) run ./image/cmd/mkimage -role $* -kernel build/kernel -firmware build/bin/firmware-$* -o $@

# A signed image (header, kernel, initramfs, digest, ed25519 signature) for flashing.
build/images/%.img: build/images/%.cpio build/keys/dev.key
	@$(GO) run ./image/cmd/imgtool build -key build/keys/dev.key -role $* -version $(VERSION) \
		-kernel build/kernel/vmlinuz -initramfs $< -o $@
	@$(GO) run ./image/cmd/imgtool verify -key build/keys/dev.pub -role $* $@

# The development signing key: made once, never committed (build/ is ignored).
keys: build/keys/dev.key
build/keys/dev.key:
	@$(GO) run ./image/cmd/imgtool keygen -dir build/keys

image: build/images/$(ROLE).cpio build/images/$(ROLE).img
images: $(foreach r,$(ROLES),build/images/$(r).cpio build/images/$(r).img)

# The main job: boot the default shelf and give the shelf> prompt.
shelf: deps images
	$(GO) run ./qemu/cmd/shelf up

vet:
	$(GO) vet $(PKGS_NOFW)
	@for r in $(ROLES); do $(GO) vet -tags $$r ./firmware || exit 1; done

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

# The firmware main package builds only with exactly one role tag; test it once per role,
# and check that no tag or two tags fail with a message naming the tags.
test-firmware:
	@for r in $(ROLES); do $(GO) test $(TEST_FLAGS) -tags $$r ./firmware || exit 1; done
	@out=$$($(GO) build -o /dev/null ./firmware 2>&1); rc=$$?; \
		if [ $$rc = 0 ] || ! grep -q 'mgmt_or_switch_or_epon' <<<"$$out"; then echo "no-tag build: want a failure naming the tags, got: $$out"; exit 1; fi
	@out=$$($(GO) build -o /dev/null -tags mgmt,epon ./firmware 2>&1); rc=$$?; \
		if [ $$rc = 0 ] || ! grep -q 'only_one_role_tag_allowed' <<<"$$out"; then echo "two-tag build: want a failure, got: $$out"; exit 1; fi
	@echo "firmware: role tag checks passed"

test-unit:
	$(GO) test $(TEST_FLAGS) $(PKGS_UNIT)

# Everything: static checks, unit and process-mode tests, then the QEMU tests (which need
# the kernel and the three images).
test: deps fmt-check vet images test-firmware
	$(GO) test -timeout 30m $(TEST_FLAGS) $(PKGS_UNIT)
	CGOA_REQUIRE_VM=1 $(GO) test -p 1 -timeout 45m $(TEST_FLAGS) $(PKGS_VM)

bench: bench-boot bench-shelf bench-failover bench-switchover bench-ckpt bench-dba bench-snmp

bench-boot: deps images
	$(GO) run ./qemu/cmd/bench boot -o build/bench/boot.json

bench-shelf: deps images
	$(GO) run ./qemu/cmd/bench shelf -o build/bench/shelf.json

# Failover outage (largest gap in 1 ms probes around a kill -9) in process mode, with
# keepalived VRRPv3 at 0.05 s and at its default advert interval as peers in the same run,
# then over 20 pulls of the active mgmt blade in the QEMU shelf (merged into the same file).
bench-failover: deps
	@mkdir -p build/bench
	CGOA_BENCH_FAILOVER=$(CURDIR)/build/bench/failover.json $(GO) test -count=1 -run '^TestBenchFailover$$' -timeout 30m ./ha/procmode
	$(MAKE) images
	$(GO) run ./qemu/cmd/bench failover -kills 20 -o build/bench/failover.json

# Checkpoint replication between two processes in network namespaces over veth, with raw
# TCP over the same veth as the peer.
# 20 pulls of the active hub (protected STP), then the unprotected peer (plain 802.1D on both hubs).
bench-switchover: deps images
	$(GO) run ./qemu/cmd/bench switchover -kills 20 -o build/bench/switchover.json

bench-ckpt: deps
	@mkdir -p build/bench
	CGOA_BENCH_CKPT=$(CURDIR)/build/bench/ckpt.json $(GO) test -run '^TestBenchCkpt$$' -v -count=1 -timeout 20m ./ha/ckpt/

bench-dba:
	$(GO) run ./blades/epon/cmd/dbasim -bench build/bench/dba.json -seeds 3 -duration 5s
	$(GO) run ./blades/epon/olt/cmd/oltbench -merge build/bench/dba.json

bench-snmp: deps
	@mkdir -p build/bench build/bin
	$(GO) build -o build/bin/snmpbench ./snmpagent/cmd/snmpbench
	build/bin/snmpbench -out build/bench/snmp.json

clean:
	rm -rf build/bin build/images build/bench build/shelf

FORCE:
