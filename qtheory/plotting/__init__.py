"""Plotting (matplotlib). Functions take computed results, draw on ``ax`` (a new figure when
``None``) and return the Axes; nothing here saves or shows.

Conventions: ``ax`` is a keyword argument of every single-panel function and the function returns
that Axes. The two multi-panel functions take ``axes`` instead and return the array of Axes they
drew on (the Figure is ``axes.flat[0].figure``): :func:`qtheory.plotting.ste.plot_forward_backward`
(three stacked panels) and :func:`qtheory.plotting.calibrate.plot_calibrator_grid` (one panel per
distribution plus a legend panel; it also sets the figure's suptitle and layout).
"""
