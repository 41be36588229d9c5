"""Mitigation levers: what they are (`model`), how they are applied and read back (`client`),
and the one logged change flow every lever goes through (`service.ControlService`)."""
