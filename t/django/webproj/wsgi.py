"""WSGI entry point for gunicorn: webproj.wsgi:application."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webproj.settings")
application = get_wsgi_application()
