# The hosts lab's session fixture `hosts_lab` (tests/lab/fixtures.py), for tests marked @pytest.mark.hosts_lab.
pytest_plugins = ["tests.lab.fixtures"]


def pytest_collection_modifyitems(config, items):
    """Deselect (not skip) hosts-lab tests marked ``lab_pacemaker(VERSIONS...)`` when the lab runs another version
    (LAB_PACEMAKER): such a test has nothing to do there, and a CI run must show no skip."""
    import os

    variant = os.environ.get("LAB_PACEMAKER") or "2.1"
    keep, drop = [], []
    for item in items:
        mark = item.get_closest_marker("lab_pacemaker")
        (drop if mark is not None and variant not in mark.args else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
