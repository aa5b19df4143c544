# Read by gunicorn from the working directory: `gunicorn trader.wsgi` in production.
# The access log goes through trader.logging.redact like every other log line.
import os

logger_class = "trader.gunicorn.RedactingLogger"
accesslog = "-"
# The desk's pages poll small fragments every 2-3 s: threaded workers whose keep-alive outlasts
# the poll interval let each poll reuse its connection, and a slow request does not hold a
# whole process (measured in README "Load test of the fragments"). Override with -w/--threads
# or WEB_CONCURRENCY / GUNICORN_THREADS.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = 10
