TEAM = "marketing"


def table(name):
    return f"{TEAM}.{name}"
