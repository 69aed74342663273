# What the application does once the release is live: it reads the column
# that 0002 should have added.
import datetime

from django.core.management.base import BaseCommand

from faked.models import Invoice


class Command(BaseCommand):
    help = "count overdue invoices"

    def handle(self, *args, **options):
        today = datetime.date.today()
        n = Invoice.objects.filter(due_date__lt=today).count()
        self.stdout.write("%d overdue\n" % n)
