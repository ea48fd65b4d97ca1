"""The depositors' web page: a small WSGI server (depositor.web.server) and its static page (depositor/web/static)."""
