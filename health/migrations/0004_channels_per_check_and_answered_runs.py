# A check may choose its alert channels (none chosen: every enabled channel, as before, so no
# stored set-up changes meaning), and a result records whether the run answered (a failed run's
# latency is only how long failing took). The new columns and table start empty: nothing is
# rewritten.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('health', '0003_state_and_status_choices'),
    ]

    operations = [
        migrations.AddField(
            model_name='check',
            name='channels',
            field=models.ManyToManyField(blank=True, related_name='checks', to='health.alertchannel'),
        ),
        migrations.AddField(
            model_name='check',
            name='last_answered',
            field=models.BooleanField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='result',
            name='answered',
            field=models.BooleanField(blank=True, null=True),
        ),
    ]
