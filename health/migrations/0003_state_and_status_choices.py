# Choices only: the stored values are unchanged, so the database is not touched.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('health', '0002_exposure_alerts'),
    ]

    operations = [
        migrations.AlterField(
            model_name='alert',
            name='status',
            field=models.CharField(choices=[('pending', 'Pending'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Failed')], default='pending', max_length=10),
        ),
        migrations.AlterField(
            model_name='check',
            name='state',
            field=models.CharField(choices=[('pending', 'Pending'), ('up', 'Up'), ('degraded', 'Degraded'), ('down', 'Down'), ('paused', 'Paused')], default='pending', max_length=10),
        ),
    ]
