"""Rule packs: load, validate, hash and select the rules in force."""
