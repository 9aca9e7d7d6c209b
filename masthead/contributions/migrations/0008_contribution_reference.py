"""Contribution.reference: a random human reference (7KQP-3MXD) for receipts, the thank-you
page and the admin, instead of the database id. Existing rows each get their own."""

from django.db import migrations, models

import masthead.contributions.providers.banktransfer


def fill(apps, schema_editor):
    from masthead.contributions.providers.banktransfer import new_reference

    Contribution = apps.get_model("contributions", "Contribution")
    for pk in Contribution.objects.filter(reference="").values_list("pk", flat=True).iterator():
        Contribution.objects.filter(pk=pk).update(reference=new_reference())


class Migration(migrations.Migration):
    dependencies = [
        ("contributions", "0007_bankaccountsettings"),
    ]

    operations = [
        migrations.AddField(
            model_name="contribution",
            name="reference",
            field=models.CharField(default="", editable=False, max_length=9),
            preserve_default=False,
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="contribution",
            name="reference",
            field=models.CharField(
                db_index=True,
                default=masthead.contributions.providers.banktransfer.new_reference,
                editable=False,
                max_length=9,
            ),
        ),
    ]
