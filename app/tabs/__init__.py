"""The app's tabs: one module per tab, each with build(service) called inside the tab."""
