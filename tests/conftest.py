# The hosts lab's session fixture `hosts_lab` (tests/lab/fixtures.py), for tests marked @pytest.mark.hosts_lab.
pytest_plugins = ["tests.lab.fixtures"]
