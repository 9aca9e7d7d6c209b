"""The "Audience & revenue" group: the Wagtail admin and Insights, nothing else (no donor or
subscriber records, so no two-factor step)."""

from django.db import migrations

GROUP = "Audience & revenue"


def create_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    insights_type, _ = ContentType.objects.get_or_create(app_label="insights", model="insights")
    view, _ = Permission.objects.get_or_create(
        content_type=insights_type,
        codename="view_insights",
        defaults={"name": "Can view insights (aggregate money and audience)"},
    )
    admin_type, _ = ContentType.objects.get_or_create(app_label="wagtailadmin", model="admin")
    access, _ = Permission.objects.get_or_create(
        content_type=admin_type, codename="access_admin",
        defaults={"name": "Can access Wagtail admin"},
    )
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(view, access)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("wagtailadmin", "0001_create_admin_access_permissions"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
