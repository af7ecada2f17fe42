# Convenience targets; the scripts hold the logic.
PREFIX ?= /usr/local

.PHONY: all bench test install
all:
	swift build -c release
bench:
	scripts/bench.sh
test:
	scripts/test.sh
install:
	scripts/install.sh $(PREFIX)
