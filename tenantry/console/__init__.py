"""The console: the web pages teams and platform staff use, served by the same app.

Server-rendered (Jinja2) over the same services as the API, with a little script of our own
(`static/console.js`: the virtual list, live progress) and no front-end build. Signed in with a
cookie session (`sessions.py`), every form carrying a CSRF token, every page under a
Content-Security-Policy that allows no inline script. `install(app)` wires it in.
"""
