"""The real Pacemaker lab for remotectl's tests (systemd-nspawn hosts): see hosts.py, fixtures.py and README.md."""
