# Read by gunicorn from the working directory: `gunicorn trader.wsgi` in production.
# The access log goes through trader.logging.redact like every other log line.
logger_class = "trader.gunicorn.RedactingLogger"
accesslog = "-"
