"""The baseline of the small-request benchmarks: a hello-world Flask view, served by the same
``gunicorn -c gunicorn.conf.py`` configuration as the service (``benchmarks.hello:app``)."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "Hello, World!"
