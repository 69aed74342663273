"""WSGI entry of the health test app: gunicorn healthweb.wsgi."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthweb.settings")
application = get_wsgi_application()
