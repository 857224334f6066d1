"""The assurance team's web workspace (`care-assure serve`): server-rendered pages over the registry service."""
