"""Plotting (matplotlib). Functions take computed results, draw on ``ax`` (a new
figure when ``None``) and return the Axes; nothing here saves or shows."""
