"""The depositors' web page: a small WSGI server (keeper.web.server) and its static page (keeper/web/static)."""
