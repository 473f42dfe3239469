"""remotectl: operate Pacemaker clusters with pacemaker_remote nodes."""

__version__ = "0.1.0"
