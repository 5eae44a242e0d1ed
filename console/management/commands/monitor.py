"""`manage.py monitor`: the console's background services without the web server.

For set-ups with several web workers (PostgreSQL and Redis): one `monitor` runs the port
sampler and the health scheduler, the web processes only serve. It runs exactly the services
of settings.CONSOLE_SERVICES, as the ASGI lifespan does, until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal

from django.core.management.base import BaseCommand

from console.runtime import Runtime


class Command(BaseCommand):
    help = "Run the background services (port sampler, health checks) until SIGINT/SIGTERM."

    def handle(self, *args, **options):
        asyncio.run(self._main())

    async def _main(self) -> None:
        runtime = Runtime()
        shutdown = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, shutdown.set)
        await runtime.start()
        self.stdout.write(f"monitor: running {', '.join(runtime.service_paths)}; Ctrl-C stops")
        await shutdown.wait()
        self.stdout.write("monitor: stopping")
        await runtime.stop()
