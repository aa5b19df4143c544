"""Upper bounds of numeric form inputs: the largest value the column it lands in can hold.

A form field without one lets 99999999999999999999 through to the database, which refuses it
with an error page; with one, the form says what is allowed. Tighter rules (risk limits, admin
ceilings) are checked by the services on top.
"""

SMALLINT_MAX = 32_767
INT_MAX = 2_147_483_647
BIGINT_MAX = 9_223_372_036_854_775_807
