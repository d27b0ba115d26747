# Text helpers for building URLs.
module Slugs
  # Turn a title into a URL-friendly slug: lowercase words joined by hyphens.
  def self.slugify(title)
    title.downcase
         .unicode_normalize(:nfkd)
         .gsub(/[^a-z0-9\s-]/, "")
         .strip
         .gsub(/[\s-]+/, "-")
  end
end
