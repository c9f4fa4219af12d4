"""What every layer shares: the declarative base, time, and the domain error tree."""
