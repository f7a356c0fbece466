"""A one-file Django app, for tests/test_hosting.py: served by gunicorn and by turbo."""
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import JsonResponse
from django.urls import path

settings.configure(DEBUG=False, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="test",
                   MIDDLEWARE=[])


def hello(request, name):
    return JsonResponse({"hello": name, "q": request.GET.get("q"), "method": request.method})


def echo(request):
    return JsonResponse({"length": len(request.body), "type": request.content_type})


urlpatterns = [path("hello/<str:name>", hello), path("echo", echo)]
app = get_wsgi_application()
