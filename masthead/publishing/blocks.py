"""The blocks an article body is made of: paragraphs, subheads, quotes and inline images."""

from wagtail import blocks
from wagtail.images.blocks import ImageChooserBlock


class QuoteBlock(blocks.StructBlock):
    quote = blocks.TextBlock()
    attribution = blocks.CharBlock(required=False)

    class Meta:
        icon = "openquote"
        template = "publishing/blocks/quote.html"


class InlineImageBlock(blocks.StructBlock):
    image = ImageChooserBlock()
    caption = blocks.TextBlock(
        required=False, help_text="Leave blank to use the image's own caption."
    )

    class Meta:
        icon = "image"
        template = "publishing/blocks/image.html"


class ArticleBodyBlock(blocks.StreamBlock):
    paragraph = blocks.RichTextBlock(
        features=["bold", "italic", "link", "ol", "ul"],
        template="publishing/blocks/paragraph.html",
    )
    subhead = blocks.CharBlock(icon="title", template="publishing/blocks/subhead.html")
    quote = QuoteBlock()
    image = InlineImageBlock()
