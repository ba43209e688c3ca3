# Network-fault scenarios in network namespaces (root only; see src/cluster/faultnet/).
#   make netns-setup   install iproute2 and nftables when missing (tools/netns_setup.sh)
#   make test-netns    run only tests/test_netns.py; `make test` runs them too, skipped without root

.PHONY: netns-setup test-netns

netns-setup:
	bash tools/netns_setup.sh

test-netns: $(STAMP) netns-setup
	$(BIN)/pytest tests/test_netns.py $(PYTEST_ARGS)
