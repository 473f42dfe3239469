# The Pacemaker lab's session fixture `lab` (tests/lab/fixtures.py), for tests marked @pytest.mark.lab.
pytest_plugins = ["tests.lab.fixtures"]
