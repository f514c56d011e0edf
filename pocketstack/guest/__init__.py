"""The pocketstack test guest: a small whole-disk image built from Debian packages (`build.py`), its boot scripts
(`files/`), and its registration as a public image (`register.py`)."""
