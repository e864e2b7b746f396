"""``shopsync check-webshop``: does a server honour the Custom Webshop API contract?"""
