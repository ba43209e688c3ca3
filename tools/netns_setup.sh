#!/usr/bin/env bash
# Install what the network-namespace tests need (iproute2 for `ip netns`,
# nftables for `nft`), on Debian or Ubuntu, when run as root and missing.
# Without root it only reports, and the tests skip themselves with a reason.
set -euo pipefail

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
if [ ${#missing[@]} -eq 0 ]; then
	echo "netns setup: ip and nft are installed"
	exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "netns setup: missing ${missing[*]}; install them as root to run tests/test_netns.py (it skips otherwise)"
	exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
