"""A local SMTP server for tests/api/notify.rs (aiosmtpd).

    smtp_sink.py FOLDER [--refuse-first N]

Listens on 127.0.0.1 on a free port and prints `listening on PORT`. Every message is decoded by Python's `email`
package (the outside judge of the headers and the body) and written as FOLDER/mail-K.json. The first N DATA commands
are answered `451 4.3.0 try again later` and recorded as FOLDER/refused-K.json instead. Stops when its standard
input closes (the test ended) or on SIGTERM/SIGKILL.
"""

import asyncio
import email
import email.policy
import json
import os
import sys
import threading

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, folder, refuse_first):
        self.folder = folder
        self.refuse_left = refuse_first
        self.accepted = 0
        self.refused = 0

    def write(self, name, record):
        path = os.path.join(self.folder, name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False, indent=1)
        os.replace(path + ".tmp", path)

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body_part = msg.get_body(preferencelist=("plain",)) or msg
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "message_id": str(msg["Message-ID"]),
            "date": str(msg["Date"]),
            "auto_submitted": str(msg["Auto-Submitted"]),
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset(),
            "transfer_encoding": str(msg["Content-Transfer-Encoding"]),
            "body": body_part.get_content(),
            "raw_is_ascii": all(b < 128 for b in raw),
            "attachments": [
                {
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "size": len(part.get_content()),
                    "starts_with": part.get_content()[:5].decode("latin-1"),
                }
                for part in msg.iter_attachments()
            ],
        }
        if self.refuse_left > 0:
            self.refuse_left -= 1
            self.refused += 1
            self.write(f"refused-{self.refused}.json", record)
            return "451 4.3.0 try again later"
        self.accepted += 1
        self.write(f"mail-{self.accepted}.json", record)
        return "250 2.0.0 accepted"


async def main():
    folder = sys.argv[1]
    refuse_first = 0
    if len(sys.argv) > 3 and sys.argv[2] == "--refuse-first":
        refuse_first = int(sys.argv[3])
    os.makedirs(folder, exist_ok=True)
    sink = Sink(folder, refuse_first)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="sink.test", decode_data=False), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    print(f"listening on {port}", flush=True)
    done = asyncio.Event()

    def watch_stdin():
        sys.stdin.read()
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    await done.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
