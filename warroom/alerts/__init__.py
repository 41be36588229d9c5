"""Alertmanager in: a webhook receiver, an API poller, and what turns their alerts into events.

- `model`: pure parsing of webhook payloads and `/api/v2/alerts` answers, and the `AlertBook`
  that decides which observations are news (an event) and which are repeats.
- `receiver`: the bearer-token webhook endpoint (aiohttp), with bounded bodies.
- `poller`: reads `/api/v2/alerts` on a schedule, so silenced and missed alerts are right.
- `silences`: create / extend / expire / read Alertmanager silences (the silence lever).
- `intake`: receiver + poller + book, feeding an event sink; `cli`: `warroom alerts serve`.
"""
