"""One router per resource of the bank scoring API."""
