"""The owner's reply clock: 国发〔2016〕51号 art. 14, a department answers a sharing request within
10 working days (`Settings.reply_working_days`), counted on the statutory calendar of
`core.workdays`, which the delivery clock of grants shares."""

from core.workdays import SHANGHAI, ClockBasis, add_working_days, working_days_between

__all__ = ["SHANGHAI", "ClockBasis", "add_working_days", "working_days_between"]
