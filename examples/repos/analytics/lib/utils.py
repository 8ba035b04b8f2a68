TEAM = "analytics"


def table(name):
    return f"{TEAM}.{name}"
