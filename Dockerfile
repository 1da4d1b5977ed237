# Facteur's application image: the web app, the Celery worker and beat all run from it.
FROM python:3.11-slim-bookworm AS app

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FACTEUR_DATA_DIR=/var/lib/facteur \
    FACTEUR_STATIC_ROOT=/app/staticfiles

WORKDIR /app
COPY pyproject.toml README.md ./
COPY webmail ./webmail
COPY accounts ./accounts
COPY ops ./ops
RUN pip install --no-cache-dir .
COPY . .
RUN FACTEUR_SECRET_KEY=build FACTEUR_CREDENTIALS_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput \
    && useradd --system --home /var/lib/facteur facteur \
    && mkdir -p /var/lib/facteur/uploads && chown -R facteur /var/lib/facteur
USER facteur
EXPOSE 8000
CMD ["gunicorn", "-c", "python:webmail.gunicorn_conf", "webmail.wsgi"]

# The demo: the same image with Dovecot and Postfix for `manage.py demo`.
FROM app AS demo
USER root
RUN echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd postfix redis-server \
    && rm -rf /var/lib/apt/lists/*
ENV FACTEUR_DEBUG=1 FACTEUR_ALLOWED_HOSTS=*
# A secret key of its own for each start, never the development default: sessions
# and the stored mail passwords of a published image are then nobody else's. The
# demo command prints the admin password it set (FACTEUR_DEMO_ADMIN_PASSWORD, or a new one).
CMD ["sh", "-c", "redis-server --daemonize yes --save '' && export FACTEUR_SECRET_KEY=\"$(python -c 'import secrets; print(secrets.token_urlsafe(50))')\" && echo 'A new secret key was generated for this run.' && exec python manage.py demo --addr 0.0.0.0:8000"]
