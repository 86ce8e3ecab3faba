"""``on_sale=true``: apps whose latest price in the main country is discounted."""

from marshmallow import fields

from restplug import FilterMethod, Fragment, hookimpl


async def on_sale(restplug, resource, value: bool) -> Fragment:
    path = f"prices.{restplug.settings.main_country}.price_story.0.discount"
    return Fragment({path: {"$gt": 0}} if value else {path: {"$not": {"$gt": 0}}})


@hookimpl
def register_filters(resource):
    if resource.name != "apps":
        return None
    return [FilterMethod("on_sale", fields.Boolean(), on_sale, "discounted right now")]
