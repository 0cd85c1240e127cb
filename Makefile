# tinysyn: the embedded engineer's front door. CI (.ci/run) calls the same targets.
# Every target sets itself up: the venv, and (as root) the apt packages it needs.

SHELL := /bin/bash
.DEFAULT_GOAL := help

SHARED ?= ../shared
MODEL  ?= $(SHARED)/models/kws_ref_model.tflite
TARGET ?= host
BUILD  ?= build
BOARD  ?= qemu-mps2-an386
PORT   ?=
DEVICE ?= up5k
SERIAL ?= tcp:0
MODEL_NAME := $(notdir $(basename $(MODEL)))
FIRMWARE   := $(BUILD)/firmware/$(BOARD)

VENV    := .venv
PY      := $(VENV)/bin/python
TINYSYN := $(VENV)/bin/tinysyn
# Touched after a successful install: reinstall only when pyproject.toml changes.
STAMP   := $(VENV)/.installed

PYTEST_ARGS ?=

APT_PKGS := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
NEWLIB_H := /usr/lib/arm-none-eabi/include/stdint.h

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv toolchain hostcc test hw-sim demo firmware flash emulate bench bench-dress bench-train bench-train-board bench-dress-train gen info clean distclean

help: ## list the targets
	@echo "usage: make <target> [MODEL=path.tflite] [BOARD=qemu-mps2-an386|nucleo-l4r5zi] [PORT=url] [TARGET=host|cortex-m4]"
	@grep -E '^[a-z][a-z-]*:.*## ' $(firstword $(MAKEFILE_LIST)) \
	  | awk -F':.*## ' '{ printf "  %-18s %s\n", $$1, $$2 }'
	@echo "MODEL = $(MODEL)"

# ---- setup ------------------------------------------------------------------

venv: $(STAMP) ## create .venv and install tinysyn into it (editable, with test extras)
	@:

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV) || { \
	  echo "tinysyn: cannot create $(VENV); install with: sudo apt-get install python3-venv" >&2; exit 1; }
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# Checks (and, as root, installs) the tools a recipe needs; $(1) = cross to
# include the Arm toolchain and QEMU, empty for the host C compiler only.
# Prints nothing when everything is there.
define ensure_tools
	@check() { \
	  missing=""; pkgs=""; \
	  command -v cc >/dev/null 2>&1 || { missing="cc"; pkgs="gcc"; }; \
	  if [ "$(1)" = cross ]; then \
	    command -v arm-none-eabi-gcc >/dev/null 2>&1 || missing="$${missing:+$$missing, }arm-none-eabi-gcc"; \
	    [ -f $(NEWLIB_H) ] || missing="$${missing:+$$missing, }newlib headers ($(NEWLIB_H))"; \
	    command -v qemu-system-arm >/dev/null 2>&1 || missing="$${missing:+$$missing, }qemu-system-arm"; \
	    [ "$$missing" = "" ] || [ "$$missing" = cc ] || pkgs="$${pkgs:+$$pkgs }$(APT_PKGS)"; \
	  fi; \
	}; \
	check; \
	[ -n "$$missing" ] || exit 0; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "tinysyn: missing $$missing; install with: sudo apt-get install $$pkgs" >&2; exit 1; \
	fi; \
	echo "tinysyn: missing $$missing; installing $$pkgs"; \
	apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null || exit 1; \
	check; \
	[ -z "$$missing" ] || { echo "tinysyn: still missing $$missing after apt-get install $$pkgs" >&2; exit 1; }
endef

toolchain: ## check/install arm-none-eabi-gcc, newlib, qemu-system-arm and cc
	$(call ensure_tools,cross)

hostcc: ## check/install the host C compiler cc (enough for --backend host-c)
	$(call ensure_tools,)

# ---- main jobs --------------------------------------------------------------

# pytest's own exit code is make's: 5 (no tests collected) fails like any other.
test: $(STAMP) toolchain ## run the test suite (pytest)
	$(PY) -m pytest -q -p no:cacheprovider tests $(PYTEST_ARGS)

hw-sim: $(STAMP) ## simulate the ALQ accelerator's RTL (Amaranth): random layers, a random model, the UART top, == the reference
	$(PY) -m pytest -q -p no:cacheprovider tests/hw $(PYTEST_ARGS)

DEMO := $(BUILD)/demo

demo: $(STAMP) toolchain ## on the emulated board: build MODEL, flash it over serial, run 5 inputs, trace, verify bit-exact
	@test -f "$(MODEL)" || { echo "tinysyn: model not found: $(MODEL) (set MODEL= or SHARED=)" >&2; exit 1; }
	$(TINYSYN) profile $(MODEL) --board qemu-mps2-an386 --runs 5 --seed 1 --work $(DEMO) \
	  --json $(DEMO)/profile.json --csv $(DEMO)/profile.csv --plot $(DEMO)/profile.png
	@echo "demo: report in $(DEMO)/profile.json, $(DEMO)/profile.csv, $(DEMO)/profile.png"

firmware: $(STAMP) toolchain ## build the bootloader and MODEL's DUT app for BOARD into build/firmware
	$(TINYSYN) firmware $(MODEL) --board $(BOARD) -o $(FIRMWARE)

flash: firmware ## flash MODEL's DUT app through the bootloader of the board at PORT=
	@test -n "$(PORT)" || { echo "tinysyn: set PORT= (a device like /dev/ttyACM0 or a URL like socket://127.0.0.1:4444)" >&2; exit 1; }
	$(TINYSYN) flash $(FIRMWARE)/$(MODEL_NAME)/app/dut.elf --port $(PORT)

emulate: $(STAMP) toolchain ## boot the emulated board with MODEL flashed; serve it on SERIAL=tcp:PORT|pty
	$(TINYSYN) emulate $(MODEL) --serial $(SERIAL) --work $(BUILD)/emulate

bench: $(STAMP) toolchain ## run the benchmarks, write build/bench.json (and the training benchmarks' files)
	@mkdir -p $(BUILD)
	$(PY) -m host.bench --out $(BUILD)/bench.json
	$(MAKE) --no-print-directory bench-dress bench-train bench-train-board bench-dress-train bench-alq bench-alq-hw bench-hw

bench-dress: $(STAMP) toolchain ## DRESS sub-nets' sparse kernels vs the dense DSP kernels on QEMU (about 2 min), write build/bench_dress.json
	@mkdir -p $(BUILD)
	$(PY) -m host.bench_dress --out $(BUILD)/bench_dress.json

bench-train: $(STAMP) ## int8 training vs fp32 on digits and fine-tuning the shared models (about 6 min), write build/bench_train.json, .png
	@mkdir -p $(BUILD)
	$(PY) -m host.bench_train --json $(BUILD)/bench_train.json --plot $(BUILD)/bench_train.png

bench-train-board: $(STAMP) toolchain ## one training step on the emulated board: instructions, RAM (int8 vs fp32, last-N)
	@mkdir -p $(BUILD)
	$(PY) -m host.bench_train_board --json $(BUILD)/bench_train_board.json

bench-dress-train: $(STAMP) ## DRESS sub-nets vs pruning + fine-tuning on digits, int8 accuracy, 5 seeds (about 7 min), write build/bench_dress_train.json
	@mkdir -p $(BUILD)
	$(PY) -m host.bench_dress_train --json $(BUILD)/bench_dress_train.json --markdown $(BUILD)/bench_dress_train.md

.PHONY: hw-synth bench-hw bench-alq bench-alq-hw

ALQ_DIGITS := $(BUILD)/alq/digits-2bit.npz

bench-alq: $(STAMP) ## ALQ's adaptive bit-widths vs a uniform bit-width on digits (about 3 min), write build/bench_alq.json, .md
	@mkdir -p $(BUILD)
	$(PY) -m host.bench_alq --json $(BUILD)/bench_alq.json --markdown $(BUILD)/bench_alq.md

$(ALQ_DIGITS): $(STAMP)
	@mkdir -p $(dir $@)
	$(TINYSYN) alq builtin:digits-cnn --avg-bits 2 -o $@

bench-alq-hw: $(ALQ_DIGITS) toolchain ## the accelerator's cycles vs the Cortex-M4 kernel's instructions per layer of the ALQ digits model, write build/bench_alq_hw.json, .md
	$(PY) -m host.bench_alq_hw $(ALQ_DIGITS) --work $(BUILD)/bench/alq_hw --json $(BUILD)/bench_alq_hw.json --markdown $(BUILD)/bench_alq_hw.md

hw-synth: $(STAMP) ## synthesize, place and route the accelerator for DEVICE=up5k|ecp5-25k, write build/hw/synth-$(DEVICE).json
	@mkdir -p $(BUILD)/hw
	$(TINYSYN) hw synth --device $(DEVICE) --work $(BUILD)/hw/$(DEVICE) --json $(BUILD)/hw/synth-$(DEVICE).json

bench-hw: $(STAMP) ## the accelerator's default configuration on every FPGA (a few minutes), write build/bench_hw.json, .md
	@mkdir -p $(BUILD)
	$(PY) -m host.bench_hw --work $(BUILD)/hw --json $(BUILD)/bench_hw.json --markdown $(BUILD)/bench_hw.md

gen: $(STAMP) ## generate C for MODEL into build/gen/<model> (TARGET=host|cortex-m4)
	$(TINYSYN) gen $(MODEL) -o $(BUILD)/gen/$(notdir $(basename $(MODEL))) --target $(TARGET)

info: $(STAMP) ## describe MODEL (ops, tensors, quantization)
	$(TINYSYN) info $(MODEL)

# ---- cleanup ----------------------------------------------------------------

clean: ## remove build/
	rm -rf $(BUILD)

distclean: clean ## also remove .venv/
	rm -rf $(VENV)
